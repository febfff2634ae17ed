--@include keys
-- Forget a job's lease: out of the deadline set and its machine's set of jobs.
-- `drop_lease_of` is for callers that already read the job's machine.
local function drop_lease_of(p, leasesKey, jobKey, jobId, machine)
  redis.call('ZREM', leasesKey, jobId)
  if machine then
    redis.call('SREM', machine_jobs_key(p, machine), jobId)
    redis.call('SREM', cancels_key(p, machine), jobId)
  end
  redis.call('HDEL', jobKey, 'lease_until', 'token')
end

local function drop_lease(p, leasesKey, jobKey, jobId)
  drop_lease_of(p, leasesKey, jobKey, jobId, redis.call('HGET', jobKey, 'machine'))
end
