--[[ claim: lease up to N ready jobs of some functions to one machine, oldest first.
  Each claimed job gets a new fencing token, attempt + 1, a lease deadline and a
  timeline event, all in this one step: there is no window in which a job has left its
  queue but is not leased.

  KEYS[1] leases zset            {t:p}:leases        (score: lease deadline ms)
  KEYS[2] machine's jobs set     {t:p}:mjobs:<machine>
  KEYS[3] fencing token counter  {t:p}:token
  KEYS[4] machines zset          {t:p}:machines
  KEYS[5..] ready streams        {t:p}:q:<fn>, in the order to serve them
  ARGV[1] partition prefix  ARGV[2] machine id  ARGV[3] max jobs  ARGV[4] lease ttl ms
  ARGV[5] timeline maxlen
  ARGV[6] 1: lease only to a machine with a live heartbeat record (a long poll that a
          machine declared dead left open must not take jobs into the void)
  Returns a list of {id, fn, input, attempt, max_attempts, token, timeout_ms, parent}
]]
--@include now_ms
--@include keys
--@include timeline
local leasesKey, machineJobsKey, tokenKey = KEYS[1], KEYS[2], KEYS[3]
local p, machine = ARGV[1], ARGV[2]
local want = tonumber(ARGV[3])
local leaseTtl = tonumber(ARGV[4])
local maxlen = tonumber(ARGV[5])
local now = now_ms()
local claimed = {}
if ARGV[6] == '1' and not redis.call('ZSCORE', KEYS[4], machine) then
  return claimed
end

for i = 5, #KEYS do
  while #claimed < want do
    -- At most 1000 a round, so the ids fit in one unpack() for XDEL.
    local entries = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT',
                               math.min(want - #claimed, 1000))
    if #entries == 0 then break end
    local ids = {}
    for n, entry in ipairs(entries) do ids[n] = entry[1] end
    redis.call('XDEL', KEYS[i], unpack(ids))
    for _, entry in ipairs(entries) do
      local jobId = entry[2][2]
      local jobKey = job_key(p, jobId)
      local job = redis.call('HMGET', jobKey, 'status', 'fn', 'input', 'attempt',
                             'max_attempts', 'timeout_ms', 'parent')
      -- Cancel deletes its job's entry; an entry whose job is not queued anyway (its
      -- record deleted by hand, say) is dropped here.
      if job[1] == 'queued' then
        local attempt = tonumber(job[4]) + 1
        local token = redis.call('INCR', tokenKey)
        local timeoutMs = tonumber(job[6]) or 0
        local leaseUntil = now + leaseTtl
        local deadline = 0
        if timeoutMs > 0 then
          deadline = now + timeoutMs + leaseTtl
          leaseUntil = math.min(leaseUntil, deadline)
        end
        redis.call('HSET', jobKey, 'status', 'running', 'attempt', attempt,
          'token', token, 'machine', machine, 'started_at', now,
          'lease_until', leaseUntil, 'deadline', deadline)
        redis.call('ZADD', leasesKey, leaseUntil, jobId)
        redis.call('SADD', machineJobsKey, jobId)
        timeline_to(p, job[7] or jobId, jobId, maxlen, now, 'claimed', 'queued',
                    'machine', machine, 'attempt', attempt, 'token', token)
        claimed[#claimed + 1] = {jobId, job[2], job[3], attempt, tonumber(job[5]),
                                 token, timeoutMs, job[7] or ''}
      end
    end
  end
end
return claimed
