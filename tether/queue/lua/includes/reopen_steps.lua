--@include run_keys
--@include held
-- Where a retry resumes: the position(s) of the failure that went unhandled. Records at
-- `reopen` (comma-separated positions: a failed step, or every failed child of one
-- gather) are dropped so they run again, and so is every record past `after` (what the
-- code did after the failure, e.g. compensation steps, happens anew). Records before
-- are kept, handled failures included. A signal consumed by a dropped wait goes back to
-- the front of the buffer, so the re-run finds it again (and a decision consumed by a
-- dropped wait is held again). Log lines past `after` are
-- written again by the re-run (the log mark moves back).
-- Cost: one HKEYS of the run's steps, on failure only. Every machine's sticky replay of
-- the run is invalidated (`parked` cleared).
local function reopen_steps(p, runKey, stepsKey, runId, reopen, after)
  -- The history is rewritten: no machine's replay in memory matches it any more.
  redis.call('HSET', runKey, 'parked', '')
  local drop = {}
  for pos in string.gmatch(reopen or '', '[^,]+') do drop[#drop + 1] = tonumber(pos) end
  local last = tonumber(after)
  if last then
    for _, pos in ipairs(redis.call('HKEYS', stepsKey)) do
      if tonumber(pos) > last then drop[#drop + 1] = tonumber(pos) end
    end
    local mark = tonumber(redis.call('HGET', runKey, 'log_mark'))
    local keep = (last + 1) * 1000000 - 1
    if mark and mark > keep then redis.call('HSET', runKey, 'log_mark', keep) end
  end
  table.sort(drop)
  local signals = {}
  for _, pos in ipairs(drop) do
    local rec = redis.call('HGET', stepsKey, pos)
    if rec then
      local name = string.match(rec, '^{"name":"([^"]*)","kind":"signal","status":"completed"')
      local at = string.find(rec, ',"result":', 1, true)
      if name and at then
        signals[#signals + 1] = {name, name .. '\n' .. string.sub(rec, at + 10, -2)}
      end
      local key = string.match(rec, '^{"name":"([^"]*)","kind":"approval","status":"completed"')
      if key then held_add(runKey, 'held_approvals', key, false) end
      redis.call('HDEL', stepsKey, pos)
    end
  end
  for i = #signals, 1, -1 do
    redis.call('LPUSH', signals_key(p, runId), signals[i][2])
    held_add(runKey, 'held_signals', signals[i][1], true)
  end
end
