--[[ fail: record a failed attempt, if and only if the caller holds the job's lease (the
  job is running, leased to this machine, with this token).
  Retryable with attempts left: delayed with exponential backoff and jitter.
  Attempts used up: dead. Not retryable: failed. Cancellation requested: cancelled.

  KEYS[1] job hash      {t:p}:job:<id>
  KEYS[2] leases zset   {t:p}:leases
  KEYS[3] delayed zset  {t:p}:delayed
  ARGV[1] partition prefix  ARGV[2] job id  ARGV[3] fencing token  ARGV[4] error (JSON)
  ARGV[5] retryable (1|0)   ARGV[6] jitter in [0, 1)  ARGV[7] retention ms
  ARGV[8] notify channel    ARGV[9] timeline maxlen
  ARGV[10] backoff ms       ARGV[11] backoff cap ms  (for a job without its own)
  ARGV[12] machine id (the reporter)
  ARGV[13] retry delay ms, exactly, instead of the backoff ('' or absent: the backoff)
  Returns {1, new status}  ('delayed', 'dead', 'failed' or 'cancelled')
          {-1, ''}      no such job
          {-2, status}  this machine does not hold the lease with this token
]]
--@include now_ms
--@include keys
--@include timeline
--@include drop_lease
--@include finish_job
--@include retry_or_die
local jobKey, leasesKey, delayedKey = KEYS[1], KEYS[2], KEYS[3]
local p, jobId, token, errorJson = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local retentionMs, channel, maxlen = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local job = redis.call('HMGET', jobKey, 'status', 'token', 'machine', 'cancel_requested',
                       'slots')
if not job[1] then return {-1, ''} end
if job[1] ~= 'running' or job[2] ~= token or job[3] ~= ARGV[12] then
  return {-2, job[1]}
end

local now = now_ms()
drop_lease_of(p, leasesKey, jobId, job[3], job[4], job[5])
local status = retry_or_die(p, jobKey, delayedKey, jobId, now, errorJson,
  tonumber(ARGV[5]), 0, tonumber(ARGV[6]), retentionMs, channel, maxlen,
  {ARGV[10], ARGV[11], ARGV[13]})
return {1, status}
