--@include keys
--@include timeline
--@include ready_stream
-- Put a job on its function's ready stream (its priority's) and wake the long polls
-- waiting for it.
local function make_ready(p, jobKey, jobId, channel)
  local job = redis.call('HMGET', jobKey, 'fn', 'priority')
  local fn = job[1]
  local entry = redis.call('XADD', ready_stream(p, fn, job[2]), '*', 'id', jobId)
  redis.call('HSET', jobKey, 'status', 'queued', 'entry', entry)
  redis.call('PUBLISH', channel, 'q:' .. fn)
end
