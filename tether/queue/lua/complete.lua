--[[ complete: commit a job's result, if and only if the caller holds its lease.
  A stale or unknown fencing token changes nothing.

  KEYS[1] job hash      {t:p}:job:<id>
  KEYS[2] leases zset   {t:p}:leases
  KEYS[3] events stream {t:p}:events   (the orchestrator's)
  ARGV[1] partition prefix  ARGV[2] job id  ARGV[3] fencing token  ARGV[4] result (JSON)
  ARGV[5] retention ms      ARGV[6] notify channel  ARGV[7] timeline maxlen
  Returns {1, 'completed'}
          {-1, ''}      no such job
          {-2, status}  the lease is not held with this token (stale, or not running)
]]
--@include now_ms
--@include keys
--@include timeline
--@include drop_lease
--@include finish_job
local jobKey, leasesKey, eventsKey = KEYS[1], KEYS[2], KEYS[3]
local p, jobId, token = ARGV[1], ARGV[2], ARGV[3]
local job = redis.call('HMGET', jobKey, 'status', 'token', 'attempt', 'machine', 'parent')
if not job[1] then return {-1, ''} end
if job[1] ~= 'running' or job[2] ~= token then return {-2, job[1]} end

local now = now_ms()
drop_lease_of(p, leasesKey, jobKey, jobId, job[4])
timeline_to(p, job[5] or jobId, jobId, tonumber(ARGV[7]), now, 'completed', 'running',
            'attempt', job[3])
finish_job(p, jobKey, eventsKey, jobId, 'completed', now, tonumber(ARGV[5]), ARGV[6],
           {'result', ARGV[4]})
return {1, 'completed'}
