-- Decisions and signals a run holds that its code has not consumed (yet): a comma list
-- per kind in the run hash ('held_approvals', 'held_signals'; names never hold commas),
-- shown as `buffered` on the run, so a decision for a name the code never waits on is
-- visible instead of stored silently.
local function held_add(runKey, field, name, front)
  local cur = redis.call('HGET', runKey, field) or ''
  if cur == '' then
    cur = name
  elseif front then
    cur = name .. ',' .. cur
  else
    cur = cur .. ',' .. name
  end
  redis.call('HSET', runKey, field, cur)
end

local function held_remove(runKey, field, name)
  local cur = redis.call('HGET', runKey, field)
  if not cur or cur == '' then return end
  local out, removed = {}, false
  for item in string.gmatch(cur, '[^,]+') do
    if item == name and not removed then removed = true else out[#out + 1] = item end
  end
  redis.call('HSET', runKey, field, table.concat(out, ','))
end
