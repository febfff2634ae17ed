--[[ expire: jobs given an `expires` time that passed before they started end `expired`
  (queued or delayed; a job that started, or ended, is left as it is). The claim makes
  the same check for a job it is about to lease (includes/expire_job.lua), so no job is
  ever handed out past its expiry; this pass ends the ones no claim reached.

  KEYS[1] expiring zset  {t:p}:expiring   (score: the job's expiry, ms)
  ARGV[1] partition prefix  ARGV[2] max jobs  ARGV[3] retention ms
  ARGV[4] timeline maxlen
  Returns the ids of the jobs it expired
]]
--@include now_ms
--@include keys
--@include take_due
--@include expire_job
local p, retentionMs, maxlen = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local expired = {}
for _, jobId in ipairs(take_due(KEYS[1], now, ARGV[2])) do
  local jobKey = job_key(p, jobId)
  local job = redis.call('HMGET', jobKey, 'status', 'attempt', 'fn', 'entry', 'expires_at')
  local status = job[1]
  if (status == 'queued' or status == 'delayed') and not job[2]
      and tonumber(job[5] or '') and tonumber(job[5]) <= now then
    expire_job(p, jobKey, jobId, status, job[3], job[4], now, retentionMs, maxlen)
    expired[#expired + 1] = jobId
  end
end
return expired
