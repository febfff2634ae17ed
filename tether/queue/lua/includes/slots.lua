--@include keys
--@include run_keys
--@include make_ready
-- A lease that held concurrency slots ended (complete, fail, reap, release, machine_dead:
-- every end of a lease goes through drop_lease.lua). `slots` is what the claim took,
-- recorded on the job: 'f' a slot of its function, 'k' one of its concurrency key, or
-- both. A key slot is given back here, and the oldest job parked behind that key made
-- ready again (at the tail of its stream). A function slot is given back here too, and
-- the polls waiting for the function woken (its queue was skipped while it was full);
-- or, given `freed` (function -> count), counted there for the caller to give back all
-- of a batch's at once.
local function give_back(p, jobKey, slots, freed)
  local job = redis.call('HMGET', jobKey, 'fn', 'ckey')
  local fn, ckey = job[1], job[2]
  local runningKey = feature_key(p, 'running')
  redis.call('HDEL', jobKey, 'slots')
  if ckey and string.find(slots, 'k', 1, true) then
    local field = fn .. '/' .. ckey
    if redis.call('HINCRBY', runningKey, field, -1) <= 0 then
      redis.call('HDEL', runningKey, field)
    end
    local nextId = redis.call('LPOP', feature_key(p, 'kwait', fn, ckey))
    if nextId then
      local nextKey = job_key(p, nextId)
      local next = redis.call('HMGET', nextKey, 'status', 'parked')
      if next[1] == 'queued' and next[2] == '1' then
        redis.call('HDEL', nextKey, 'parked', 'waiting_on')
        make_ready(p, nextKey, nextId, notify_channel(p))
      end
    end
  end
  if string.find(slots, 'f', 1, true) then
    if freed then
      freed[fn] = (freed[fn] or 0) + 1
      return
    end
    if redis.call('HINCRBY', runningKey, fn, -1) <= 0 then redis.call('HDEL', runningKey, fn) end
    redis.call('PUBLISH', notify_channel(p), 'q:' .. fn)
  end
end
