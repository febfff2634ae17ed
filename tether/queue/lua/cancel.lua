--[[ cancel: a queued or delayed job is cancelled at once; a running one is marked, and
  its machine learns of it at its next heartbeat (the job ends when the machine reports).

  KEYS[1] job hash      {t:p}:job:<id>
  KEYS[2] delayed zset  {t:p}:delayed
  ARGV[1] partition prefix  ARGV[2] job id  ARGV[3] retention ms
  ARGV[4] notify channel    ARGV[5] timeline maxlen  ARGV[6] reason (JSON error)
  Returns {1, 'cancelled'}      done
          {1, 'cancelling'}     running: requested, delivered at the next heartbeat
          {-1, ''}              no such job
          {-3, status}          already finished
]]
--@include now_ms
--@include keys
--@include timeline
--@include finish_job
--@include leave_ready
local jobKey, delayedKey = KEYS[1], KEYS[2]
local p, jobId = ARGV[1], ARGV[2]
local maxlen = tonumber(ARGV[5])
local job = redis.call('HMGET', jobKey, 'status', 'machine', 'fn', 'entry', 'priority',
                       'parked', 'ckey')
local status = job[1]
if not status then return {-1, ''} end
local now = now_ms()

if status == 'running' then
  redis.call('HSET', jobKey, 'cancel_requested', 1)
  redis.call('SADD', cancels_key(p, job[2]), jobId)
  timeline(p, jobKey, jobId, maxlen, now, 'cancel_requested', status)
  return {1, 'cancelling'}
end
if status == 'queued' or status == 'delayed' then
  if status == 'queued' then
    -- Out of the ready stream too, so queue depths count only claimable jobs.
    leave_ready(p, jobId, job[3], job[4], job[5], job[6], job[7])
  else
    redis.call('ZREM', delayedKey, jobId)
  end
  timeline(p, jobKey, jobId, maxlen, now, 'cancelled', status)
  finish_job(p, jobKey, jobId, 'cancelled', now, tonumber(ARGV[3]), ARGV[4],
             {'error', ARGV[6]}, maxlen)
  return {1, 'cancelled'}
end
return {-3, status}
