--@include keys
--@include run_keys
--@include make_ready
-- A lease that held concurrency slots ended (complete, fail, reap, release, machine_dead:
-- every end of a lease goes through drop_lease.lua). `slots` is what the claim took,
-- recorded on the job: 'f' a slot of its function, 'k' one of its concurrency key, or
-- both. Each is given back; a freed function slot wakes the polls waiting for the
-- function (its queue was skipped while full), a freed key slot makes the oldest job
-- parked behind that key ready again (at the tail of its stream).
local function give_back(p, jobKey, slots)
  local channel = notify_channel(p)
  local job = redis.call('HMGET', jobKey, 'fn', 'ckey')
  local fn, ckey = job[1], job[2]
  local runningKey = feature_key(p, 'running')
  redis.call('HDEL', jobKey, 'slots')
  if string.find(slots, 'f', 1, true) then
    if redis.call('HINCRBY', runningKey, fn, -1) <= 0 then
      redis.call('HDEL', runningKey, fn)
    end
    redis.call('PUBLISH', channel, 'q:' .. fn)
  end
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
        make_ready(p, nextKey, nextId, channel)
      end
    end
  end
end
