--@include keys
--@include call_in_chunks
--@include slots
-- Forget a job's lease: out of the deadline set and its machine's set of jobs, and its
-- concurrency slots (if the claim took any: `slots`) given back.
-- The job keeps its last `token`: it only means something while the job is running
-- (every check reads the status first), and an HDEL per job would cost a Redis command
-- on the hottest path.
-- `drop_lease_of` is for callers that already read the job's machine, whether its
-- cancellation was requested (only then can it be in the machine's cancels set) and
-- its `slots`.
local function drop_lease_of(p, leasesKey, jobId, machine, cancelRequested, slots)
  redis.call('ZREM', leasesKey, jobId)
  if machine then
    redis.call('SREM', machine_jobs_key(p, machine), jobId)
    if cancelRequested == '1' then
      redis.call('SREM', cancels_key(p, machine), jobId)
    end
  end
  if slots then give_back(p, job_key(p, jobId), slots, nil) end
end

local function drop_lease(p, leasesKey, jobKey, jobId)
  local job = redis.call('HMGET', jobKey, 'machine', 'cancel_requested', 'slots')
  drop_lease_of(p, leasesKey, jobId, job[1], job[2], job[3])
end

-- The batch form, for a script that ends many leases of one partition at once (a
-- batch of results): `ended` lists {job id, machine or false, cancel_requested, slots}.
-- One ZREM for all and one SREM per machine, instead of two commands per job.
local function drop_leases(p, leasesKey, ended)
  local ids, byMachine, freed = {}, {}, nil
  for n, lease in ipairs(ended) do
    local jobId, machine = lease[1], lease[2]
    ids[n] = jobId
    if machine then
      byMachine[machine] = byMachine[machine] or {}
      table.insert(byMachine[machine], jobId)
      if lease[3] == '1' then redis.call('SREM', cancels_key(p, machine), jobId) end
    end
    if lease[4] then
      freed = freed or {}
      give_back(p, job_key(p, jobId), lease[4], freed)
    end
  end
  if freed then
    -- The batch's function slots, given back at once: one HINCRBY and one wake-up each.
    local runningKey = feature_key(p, 'running')
    for fn, n in pairs(freed) do
      if redis.call('HINCRBY', runningKey, fn, -n) <= 0 then redis.call('HDEL', runningKey, fn) end
      redis.call('PUBLISH', notify_channel(p), 'q:' .. fn)
    end
  end
  call_in_chunks('ZREM', leasesKey, ids)
  for machine, machineIds in pairs(byMachine) do
    call_in_chunks('SREM', machine_jobs_key(p, machine), machineIds)
  end
end
