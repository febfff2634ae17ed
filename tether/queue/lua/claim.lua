--[[ claim: lease up to N ready jobs of some functions to one machine, oldest first.
  Each claimed job gets a new fencing token, attempt + 1, a lease deadline and a
  timeline event, all in this one step: there is no window in which a job has left its
  queue but is not leased. A lease is (machine, token): the scripts that commit on it
  check both.

  Tokens are unguessable: ARGV[7] is a nonce of 128 random bits drawn by the caller
  (Lua's math.random is not a secure source, and scripts must stay deterministic), fresh
  for every call, and the n-th job of the call gets '<nonce>.<n>'. Only the machine this
  call leases to ever sees the nonce, so nobody else can name any of its tokens.

  KEYS[1] leases zset            {t:p}:leases        (score: lease deadline ms)
  KEYS[2] machine's jobs set     {t:p}:mjobs:<machine>
  KEYS[3] machines zset          {t:p}:machines
  KEYS[4..] ready streams        {t:p}:q:<fn>, in the order to serve them
  ARGV[1] partition prefix  ARGV[2] machine id  ARGV[3] max jobs  ARGV[4] lease ttl ms
  ARGV[5] timeline maxlen
  ARGV[6] 1: lease only to a machine with a live heartbeat record (a long poll that a
          machine declared dead left open must not take jobs into the void)
  ARGV[7] nonce: 32 random hex digits, never used for another call
  ARGV[8] retention ms (for a job it finds past its `expires`: it ends expired instead
          of being leased, includes/expire_job.lua)
  ARGV[9] '1': the first ready stream is this machine's sticky queue ({t:p}:q:~<machine>:
          activations of runs it keeps in memory, any function); a job there of a
          function this poll does not ask for goes to its function's own queue instead
  Returns a list of {id, fn, input, attempt, max_attempts, token, timeout_ms, parent,
          enqueued_at ('' if unknown), trace ('' if none: see enqueue.lua)}
]]
--@include now_ms
--@include keys
--@include timeline
--@include call_in_chunks
--@include expire_job
--@include run_keys
--@include make_ready
if #(ARGV[7] or '') < 32 then return redis.error_reply('claim needs a 128-bit nonce') end
local leasesKey, machineJobsKey = KEYS[1], KEYS[2]
local p, machine, nonce = ARGV[1], ARGV[2], ARGV[7] .. '.'
local want = tonumber(ARGV[3])
local leaseTtl = tonumber(ARGV[4])
local maxlen = tonumber(ARGV[5])
local now = now_ms()
-- Numbers passed to redis.call are formatted with printf on each call: format once.
local nowText = tostring(now)
local defaultLease = tostring(now + leaseTtl)
-- Timeout ms -> {lease until, deadline} as text: jobs of a batch mostly share a timeout.
local leaseFor = {}
local claimed = {}
-- The new leases (deadline, id, ...) and the ids, added in one ZADD and one SADD at the end.
local leases, ids = {}, {}
if ARGV[6] == '1' and not redis.call('ZSCORE', KEYS[3], machine) then
  return claimed
end

local served = nil
if ARGV[9] == '1' then
  served = {}
  for i = 5, #KEYS do served[string.sub(KEYS[i], #p + 3)] = true end
end

for i = 4, #KEYS do
  -- Every job on a function's stream is of that function: its name is the key's tail.
  -- The sticky queue holds jobs of several: theirs is in their record.
  local fn = string.sub(KEYS[i], #p + 3)
  local sticky = served ~= nil and i == 4
  while #claimed < want do
    local entries = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT',
                               math.min(want - #claimed, 1000))
    if #entries == 0 then break end
    -- These are the stream's oldest entries, so trimming below the id after the last
    -- one removes exactly them: whole nodes at once, where XDEL marks entry by entry.
    local ms, seq = string.match(entries[#entries][1], '^(%d+)-(%d+)$')
    redis.call('XTRIM', KEYS[i], 'MINID', '=', ms .. '-' .. string.format('%d', seq + 1))
    -- Cancel deletes its job's entry; an entry whose job is not queued anyway (its
    -- record deleted by hand, say) is dropped here.
    local ready = {}
    for _, entry in ipairs(entries) do
      local jobId = entry[2][2]
      local jobKey = job_key(p, jobId)
      local job
      if sticky then
        job = redis.call('HMGET', jobKey, 'status', 'input', 'attempt', 'max_attempts',
                         'timeout_ms', 'parent', 'enqueued_at', 'expires_at', 'trace', 'fn')
      else
        job = redis.call('HMGET', jobKey, 'status', 'input', 'attempt', 'max_attempts',
                         'timeout_ms', 'parent', 'enqueued_at', 'expires_at', 'trace')
      end
      -- Only a job given `expires` has job[8]: one past it is never handed out.
      if job[1] == 'queued' and not (job[8] and expired_on_claim(
          p, jobKey, jobId, job[3], job[8], now, tonumber(ARGV[8]), maxlen)) then
        if not sticky then
          ready[#ready + 1] = {jobId, jobKey, job, fn}
        elseif served[job[10]] then
          ready[#ready + 1] = {jobId, jobKey, job, job[10]}
        else
          -- The machine no longer serves its version: any machine that does may take it.
          make_ready(p, jobKey, jobId, notify_channel(p))
        end
      end
    end
    for _, item in ipairs(ready) do
      local jobId, jobKey, job, fn = item[1], item[2], item[3], item[4]
      local attempt = tostring((tonumber(job[3]) or 0) + 1)
      local token = nonce .. (#claimed + 1)
      local timeoutMs = tonumber(job[5]) or 0
      local lease = leaseFor[timeoutMs]
      if not lease then
        lease = {defaultLease, '0'}
        if timeoutMs > 0 then
          local deadline = now + timeoutMs + leaseTtl
          lease = {tostring(math.min(now + leaseTtl, deadline)), tostring(deadline)}
        end
        leaseFor[timeoutMs] = lease
      end
      local leaseUntil, deadline = lease[1], lease[2]
      -- The lease's deadline lives in the leases set only (its score).
      redis.call('HSET', jobKey, 'status', 'running', 'attempt', attempt, 'token', token,
        'machine', machine, 'started_at', nowText, 'deadline', deadline)
      leases[#leases + 1] = leaseUntil
      leases[#leases + 1] = jobId
      ids[#ids + 1] = jobId
      -- The token is a secret of the machine's: it stays out of the timeline, which
      -- readers of the job or run see.
      timeline_to(p, job[6] or jobId, jobId, maxlen, now, 'claimed', 'queued',
                  'machine', machine, 'attempt', attempt)
      claimed[#claimed + 1] = {jobId, fn, job[2], tonumber(attempt), tonumber(job[4]),
                               token, timeoutMs, job[6] or '', job[7] or '', job[9] or ''}
    end
  end
end
call_in_chunks('ZADD', leasesKey, leases)
call_in_chunks('SADD', machineJobsKey, ids)
return claimed
