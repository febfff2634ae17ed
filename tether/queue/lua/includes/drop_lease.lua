--@include keys
-- Forget a job's lease: out of the deadline set and its machine's set of jobs.
local function drop_lease(p, leasesKey, jobKey, jobId)
  redis.call('ZREM', leasesKey, jobId)
  local machine = redis.call('HGET', jobKey, 'machine')
  if machine then
    redis.call('SREM', machine_jobs_key(p, machine), jobId)
    redis.call('SREM', cancels_key(p, machine), jobId)
  end
  redis.call('HDEL', jobKey, 'lease_until', 'token')
end
