--[[ heartbeat: a machine is alive; extend the leases of the jobs it says it holds, all
  in one call. Only jobs leased to this machine are extended: naming another machine's
  job extends nothing and reports it as lost. A job leased to it that it does not list (the poll reply that carried it
  was lost with a crashed API) is not extended: its lease runs out and the reaper gives
  it to another machine at once, instead of it waiting for its timeout.

  KEYS[1] machines zset          {t:p}:machines     (score: last heartbeat ms)
  KEYS[2] machine's jobs set     {t:p}:mjobs:<machine>
  KEYS[3] leases zset            {t:p}:leases
  KEYS[4] machine's cancels set  {t:p}:cancels:<machine>
  KEYS[5] machine info hash      {t:p}:machine:<machine>
  ARGV[1] partition prefix  ARGV[2] machine id  ARGV[3] lease ttl ms
  ARGV[4] machine info (JSON; '' keeps what is stored)
  ARGV[5..] ids of the jobs the machine believes it holds
  Returns {extended count, {ids whose cancellation was requested}, {ids it no longer holds}}
]]
--@include now_ms
--@include keys
--@include call_in_chunks
local machinesKey, machineJobsKey, leasesKey, cancelsKey, infoKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local p, machine = ARGV[1], ARGV[2]
local leaseTtl = tonumber(ARGV[3])
local now = now_ms()

-- The last heartbeat's time is its score here: the info hash does not repeat it.
redis.call('ZADD', machinesKey, now, machine)
if ARGV[4] ~= '' then
  redis.call('HSET', infoKey, 'info', ARGV[4], 'first_seen',
             redis.call('HGET', infoKey, 'first_seen') or now)
end

-- Which listed jobs the machine holds, asked in chunks (one SMISMEMBER, not one call per
-- job); the new deadlines then go in with one ZADD XX.
local extended = 0
local lost, leases = {}, {}
for first = 5, #ARGV, 1000 do
  local last = math.min(first + 999, #ARGV)
  local holds = redis.call('SMISMEMBER', machineJobsKey, unpack(ARGV, first, last))
  for n = 1, last - first + 1 do
    local jobId = ARGV[first + n - 1]
    -- The machine's set of jobs says whose lease it is; the job's own record must
    -- agree (it always does: claim and every end of a lease write both in one script),
    -- so no stray member could ever extend another machine's job.
    local job = holds[n] == 1 and redis.call('HMGET', job_key(p, jobId), 'deadline', 'machine')
    if not job or job[2] ~= machine then
      lost[#lost + 1] = jobId
    else
      local deadline = tonumber(job[1] or '0')
      local leaseUntil = now + leaseTtl
      -- Heartbeats keep a job alive, but never past its own timeout.
      if deadline > 0 then leaseUntil = math.min(leaseUntil, deadline) end
      leases[#leases + 1] = leaseUntil
      leases[#leases + 1] = jobId
      extended = extended + 1
    end
  end
end
call_in_chunks('ZADD', leasesKey, leases, 'XX')
return {extended, redis.call('SMEMBERS', cancelsKey), lost}
