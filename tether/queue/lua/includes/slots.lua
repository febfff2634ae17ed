--@include keys
--@include run_keys
--@include make_ready
-- A lease that held concurrency slots ended (complete, fail, reap, release, machine_dead:
-- every end of a lease goes through drop_lease.lua). `slots` is what the claim took,
-- recorded on the job: 'f' a slot of its function, 'k' one of its concurrency key, or
-- both. A key slot is given back here, and the oldest job parked behind that key made
-- ready again (at the tail of its stream). A function slot is the caller's to give back
-- (`free_function_slots`): a batch of results gives back all of a function's at once.
-- Returns the job's function if it held a function slot, else nil.
local function give_back(p, jobKey, slots)
  local job = redis.call('HMGET', jobKey, 'fn', 'ckey')
  local fn, ckey = job[1], job[2]
  redis.call('HDEL', jobKey, 'slots')
  if ckey and string.find(slots, 'k', 1, true) then
    local runningKey = feature_key(p, 'running')
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
  if string.find(slots, 'f', 1, true) then return fn end
  return nil
end

-- Give back `n` slots of function `fn` and wake the polls waiting for it (its queue was
-- skipped while it was full).
local function free_function_slots(p, fn, n)
  local runningKey = feature_key(p, 'running')
  if redis.call('HINCRBY', runningKey, fn, -n) <= 0 then redis.call('HDEL', runningKey, fn) end
  redis.call('PUBLISH', notify_channel(p), 'q:' .. fn)
end
