--@include keys
--@include timeline
-- Put a job on its function's ready stream and wake the long polls waiting for it.
local function make_ready(p, jobKey, jobId, channel)
  local fn = redis.call('HGET', jobKey, 'fn')
  local entry = redis.call('XADD', queue_key(p, fn), '*', 'id', jobId)
  redis.call('HSET', jobKey, 'status', 'queued', 'entry', entry)
  redis.call('PUBLISH', channel, 'q:' .. fn)
end
