--[[ release: a machine hands a job back unfinished (it is shutting down); the job is
  ready again at once and the attempt does not count against it. Only the holder of the
  lease may: the job is running, leased to this machine, with this token.

  KEYS[1] job hash      {t:p}:job:<id>
  KEYS[2] leases zset   {t:p}:leases
  ARGV[1] partition prefix  ARGV[2] job id  ARGV[3] fencing token
  ARGV[4] notify channel    ARGV[5] timeline maxlen  ARGV[6] retention ms
  ARGV[7] machine id (the one handing it back)
  Returns {1, 'queued'}
          {1, 'cancelled'}  its cancellation had been requested
          {-1, ''}          no such job
          {-2, status}      this machine does not hold the lease with this token
]]
--@include now_ms
--@include keys
--@include timeline
--@include drop_lease
--@include make_ready
--@include finish_job
local jobKey, leasesKey = KEYS[1], KEYS[2]
local p, jobId, token = ARGV[1], ARGV[2], ARGV[3]
local job = redis.call('HMGET', jobKey, 'status', 'token', 'attempt', 'cancel_requested',
                       'machine', 'slots')
if not job[1] then return {-1, ''} end
if job[1] ~= 'running' or job[2] ~= token or job[5] ~= ARGV[7] then return {-2, job[1]} end

local now = now_ms()
drop_lease_of(p, leasesKey, jobId, job[5], job[4], job[6])
if job[4] == '1' then
  timeline(p, jobKey, jobId, tonumber(ARGV[5]), now, 'cancelled', 'running')
  finish_job(p, jobKey, jobId, 'cancelled', now, tonumber(ARGV[6]), ARGV[4], {},
             tonumber(ARGV[5]))
  return {1, 'cancelled'}
end
redis.call('HSET', jobKey, 'attempt', math.max(0, tonumber(job[3]) - 1))
make_ready(p, jobKey, jobId, ARGV[4])
timeline(p, jobKey, jobId, tonumber(ARGV[5]), now, 'released', 'running')
return {1, 'queued'}
