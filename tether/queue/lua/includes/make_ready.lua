--@include keys
--@include timeline
-- The ready stream of a job of `fn` with priority `level` (false, nil or '0': the plain
-- `q:<fn>`). Every other level has a stream of its own, listed in the function's levels
-- zset and flagged in the partition's features hash, so a claim looks for levels only
-- when some exist (docs/queue-features.md): the plain path pays one EXISTS per claim.
local function ready_stream(p, fn, level)
  if not level or level == '0' then return queue_key(p, fn) end
  redis.call('ZADD', levels_key(p, fn), level, level)
  redis.call('HSET', features_key(p), 'p/' .. fn, 1)
  return level_queue_key(p, fn, level)
end

-- Put a job on its function's ready stream (its priority's) and wake the long polls
-- waiting for it.
local function make_ready(p, jobKey, jobId, channel)
  local job = redis.call('HMGET', jobKey, 'fn', 'priority')
  local fn = job[1]
  local entry = redis.call('XADD', ready_stream(p, fn, job[2]), '*', 'id', jobId)
  redis.call('HSET', jobKey, 'status', 'queued', 'entry', entry)
  redis.call('PUBLISH', channel, 'q:' .. fn)
end
