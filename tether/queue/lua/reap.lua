--[[ reap: end the leases whose deadline passed. A job past its own timeout counts as a
  failed attempt (retried with backoff, or dead); a job whose machine stopped extending
  its lease is retried at once elsewhere.
  Nothing is reaped until the plane has heard the machines for a lease ttl (KEYS[3]'s
  `heard`, lua/plane_pass.lua): after an outage of Redis, the orchestrators or every API,
  leases ran out only because the heartbeats extending them could not arrive.

  KEYS[1] leases zset   {t:p}:leases
  KEYS[2] delayed zset  {t:p}:delayed
  KEYS[3] plane hash    {t:p}:plane
  ARGV[1] partition prefix  ARGV[2] max leases to reap  ARGV[3] jitter in [0, 1)
  ARGV[4] retention ms      ARGV[5] notify channel      ARGV[6] timeline maxlen
  ARGV[7] backoff ms        ARGV[8] backoff cap ms  (for a job without its own)
  ARGV[9] lease ttl ms
  Returns a list of {job id, new status}
]]
--@include now_ms
--@include keys
--@include timeline
--@include drop_lease
--@include finish_job
--@include retry_or_die
local leasesKey, delayedKey = KEYS[1], KEYS[2]
local p, jitter = ARGV[1], tonumber(ARGV[3])
local retentionMs, channel, maxlen = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local now = now_ms()
local heard = tonumber(redis.call('HGET', KEYS[3], 'heard') or '0')
if now < heard + tonumber(ARGV[9]) then return {} end
local expired = redis.call('ZRANGE', leasesKey, '-inf', now, 'BYSCORE', 'LIMIT', 0, ARGV[2])
local reaped = {}
for _, jobId in ipairs(expired) do
  local jobKey = job_key(p, jobId)
  local job = redis.call('HMGET', jobKey, 'status', 'deadline', 'machine', 'timeout_ms')
  if job[1] ~= 'running' then
    redis.call('ZREM', leasesKey, jobId)
  else
    local deadline = tonumber(job[2]) or 0
    local timedOut = deadline > 0 and now >= deadline
    local errorJson, immediate
    if timedOut then
      errorJson = cjson.encode({type = 'JobTimeout', message =
        'job ran past its timeout of ' .. job[4] .. ' ms on machine ' .. (job[3] or '?')})
      immediate = 0
    else
      errorJson = cjson.encode({type = 'LeaseExpired', message =
        'machine ' .. (job[3] or '?') .. ' stopped extending its lease'})
      immediate = 1
    end
    drop_lease(p, leasesKey, jobKey, jobId)
    reaped[#reaped + 1] = {jobId, retry_or_die(p, jobKey, delayedKey, jobId,
      now, errorJson, 1, immediate, jitter, retentionMs, channel, maxlen,
      {ARGV[7], ARGV[8]})}
  end
end
return reaped
