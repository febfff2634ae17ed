--[[ claim: lease up to N ready jobs of some functions to one machine, highest priority
  first, oldest first within a priority, within the function's concurrency and rate
  limits. Each claimed job gets a new fencing token, attempt + 1, a lease deadline and a
  timeline event, all in this one step: there is no window in which a job has left its
  queue but is not leased. A lease is (machine, token): the scripts that commit on it
  check both.

  Tokens are unguessable: ARGV[7] is a nonce of 128 random bits drawn by the caller
  (Lua's math.random is not a secure source, and scripts must stay deterministic), fresh
  for every call, and the n-th job of the call gets '<nonce>.<n>'. Only the machine this
  call leases to ever sees the nonce, so nobody else can name any of its tokens.

  Queue features (docs/queue-features.md) cost the plain path one EXISTS: while the
  partition's features hash does not exist, no function uses any. Else, per function, its
  fields say whether it has priority levels (p/), keyed jobs (x/), a concurrency limit
  (c/), a default key limit (k/), a rate limit (r/) or a per-key rate limit (kr/). Such a
  function's claim takes at most what its limits allow; a job whose concurrency key is
  full is parked (status stays queued, `waiting_on` says why) until a slot of its key is
  given back (includes/slots.lua); a job whose key's rate is spent becomes delayed until
  the rate lets it start (queued -> delayed, `waiting_on` says why).

  KEYS[1] leases zset            {t:p}:leases        (score: lease deadline ms)
  KEYS[2] machine's jobs set     {t:p}:mjobs:<machine>
  KEYS[3] machines zset          {t:p}:machines
  KEYS[4] features hash          {t:p}:fx
  KEYS[5] delayed zset           {t:p}:delayed
  KEYS[6..] ready streams        {t:p}:q:<fn>, in the order to serve them
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
  The priority streams {t:p}:pq:<level>:<fn>, levels {t:p}:plv:<fn>, running counts
  {t:p}:running, parked lists {t:p}:kwait:<fn>/<key>, rate states {t:p}:rate:<fn>[/<key>]
  and the expiry zset {t:p}:expiring are named from the prefix (same hash tag as KEYS).
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
local leasesKey, machineJobsKey, featuresKey, delayedKey = KEYS[1], KEYS[2], KEYS[4], KEYS[5]
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

-- The choice of a function that uses queue features: which of its ready jobs to lease,
-- within its limits, highest priority first. Built only when some function of the
-- partition uses them: every `local function` is a closure made on each call of the
-- script, which the plain path would pay for (bench/redis_instructions.py --scripts-only).
-- Returns {job id, job key, job fields, slots} of each job to lease.
local select_limited
if redis.call('EXISTS', featuresKey) == 1 then
  -- Rate limits as GCRA (the generic cell rate algorithm, a token bucket kept as one
  -- number): a limit of `n` per `period` ms lets a job start every period/n ms, with
  -- bursts of up to n. The state is the theoretical arrival time `tat` (ms) in a string
  -- key that expires when it no longer matters (a missing key: a full bucket).
  -- `spec` is '<n> <period ms>' (QueueEngine.set_limits).
  local function rate_open(key, spec, now)
    local n, period = string.match(spec, '^(%d+) (%d+)$')
    n, period = tonumber(n), tonumber(period)
    local interval = period / n
    local tat = math.max(tonumber(redis.call('GET', key) or '0') or 0, now)
    -- A start fits while tat + interval <= now + period; the small epsilon keeps float
    -- division from losing a whole start.
    local available = math.floor((now + period - tat) / interval + 1e-6)
    return {key = key, interval = interval, period = period, tat = tat,
            available = math.max(0, available)}
  end

  -- Spend `count` starts of an opened limit (kept by `rate_save`, once per call).
  local function rate_take(r, count)
    r.tat = r.tat + count * r.interval
    r.available = r.available - count
    r.spent = true
  end

  local function rate_save(r, now)
    if not r.spent then return end
    redis.call('SET', r.key, string.format('%.3f', r.tat), 'PX',
               math.max(1, math.ceil(r.tat - now)))
  end

  -- When (ms) the next start fits.
  local function rate_next_at(r)
    return math.ceil(r.tat + r.interval - r.period)
  end

  select_limited = function(mainStream, fn, f)
    -- `f`: the function's fields of the features hash (p/, c/, k/, r/, kr/, x/).
    local runningKey = feature_key(p, 'running')
    local budget = want - #claimed
    local fnLimit = tonumber(f[2])
    if fnLimit then
      budget = math.min(budget, fnLimit - (tonumber(redis.call('HGET', runningKey, fn)) or 0))
    end
    local fnRate
    if f[4] then
      fnRate = rate_open(feature_key(p, 'rate', fn), f[4], now)
      budget = math.min(budget, fnRate.available)
    end
    local chosen = {}
    if budget <= 0 then return chosen end
    -- Highest priority first: the levels above 0, the plain stream (0), the levels below.
    local streams, levelsKey = {}, feature_key(p, 'plv', fn)
    local levels = f[1] and redis.call('ZRANGE', levelsKey, 0, -1, 'REV') or {}
    local mainAt = #levels + 1
    for n, level in ipairs(levels) do
      if tonumber(level) < 0 and mainAt > #levels then
        mainAt = n
        streams[#streams + 1] = {mainStream, false}
      end
      streams[#streams + 1] = {feature_key(p, 'pq', fn, level), level}
    end
    if mainAt > #levels then streams[#streams + 1] = {mainStream, false} end
    -- At most this many jobs set aside (parked or delayed) per function and call, so one
    -- call stays bounded however many jobs wait behind a full key.
    local maxSetAside = 1000
    -- Per key of this call: its rate, and its running count {now, added by this call}
    -- (read once, written once at the end).
    local taken, setAside, keyRates, keyRunning = 0, 0, {}, {}
    local fnSlot = fnLimit and 'f' or nil
    for _, s in ipairs(streams) do
      local stream, level = s[1], s[2]
      while taken < budget and setAside < maxSetAside do
        local entries = redis.call('XRANGE', stream, '-', '+', 'COUNT',
                                   math.min(budget - taken, 1000))
        if #entries == 0 then
          if level then
            -- An empty level is forgotten, so claims stop looking at it.
            redis.call('DEL', stream)
            redis.call('ZREM', levelsKey, level)
          end
          break
        end
        local ms, seq = string.match(entries[#entries][1], '^(%d+)-(%d+)$')
        redis.call('XTRIM', stream, 'MINID', '=', ms .. '-' .. string.format('%d', seq + 1))
        for _, entry in ipairs(entries) do
          local jobId = entry[2][2]
          local jobKey = job_key(p, jobId)
          local job = redis.call('HMGET', jobKey, 'status', 'input', 'attempt',
            'max_attempts', 'timeout_ms', 'parent', 'enqueued_at', 'ckey', 'climit',
            'waiting_on', 'expires_at', 'trace')
          if job[1] == 'queued' and job[11] and not job[3] and tonumber(job[11]) <= now then
            -- Past its `expires`, never started: it ends expired (its entry is gone).
            expire_job(p, jobKey, jobId, 'queued', fn, nil, now, tonumber(ARGV[8]), maxlen)
          elseif job[1] == 'queued' then
            local ckey, slots, go = job[8], fnSlot, true
            local owner = job[6] or jobId
            if ckey then
              local limit = tonumber(job[9]) or tonumber(f[3]) or 1
              local running = keyRunning[ckey]
              if not running then
                running = {tonumber(redis.call('HGET', runningKey, fn .. '/' .. ckey)) or 0, 0}
                keyRunning[ckey] = running
              end
              if running[1] >= limit then
                -- Its key is full: parked, in order, until a slot is given back.
                redis.call('RPUSH', feature_key(p, 'kwait', fn, ckey), jobId)
                redis.call('HSET', jobKey, 'entry', '', 'parked', 1, 'waiting_on',
                  cjson.encode({kind = 'concurrency', key = ckey, limit = limit}))
                timeline_to(p, owner, jobId, maxlen, now, 'parked', 'queued', 'key', ckey)
                go = false
              elseif f[5] then
                local rate = keyRates[ckey]
                if not rate then
                  rate = rate_open(feature_key(p, 'rate', fn, ckey), f[5], now)
                  keyRates[ckey] = rate
                end
                if rate.available < 1 then
                  -- Its key's rate is spent: delayed until the rate lets it start.
                  local at = rate_next_at(rate)
                  redis.call('HSET', jobKey, 'status', 'delayed', 'entry', '',
                    'scheduled_at', at, 'waiting_on',
                    cjson.encode({kind = 'rate_limit', key = ckey, until_ms = at}))
                  redis.call('ZADD', delayedKey, at, jobId)
                  timeline_to(p, owner, jobId, maxlen, now, 'rate_limited', 'queued',
                              'key', ckey, 'until', at)
                  go = false
                else
                  rate_take(rate, 1)
                end
              end
              if go then
                running[1], running[2] = running[1] + 1, running[2] + 1
                slots = (slots or '') .. 'k'
              end
            end
            if go then
              if job[10] then redis.call('HDEL', jobKey, 'waiting_on') end
              -- Leased now: no longer subject to its expiry (a job parked or delayed
              -- above keeps it, and the expire pass may still end it).
              if job[11] then redis.call('ZREM', expiring_key(p), jobId) end
              chosen[#chosen + 1] = {jobId, jobKey, job, fn, slots}
              taken = taken + 1
            else
              setAside = setAside + 1
            end
          end
        end
      end
      if taken >= budget or setAside >= maxSetAside then break end
    end
    for ckey, running in pairs(keyRunning) do
      if running[2] > 0 then redis.call('HINCRBY', runningKey, fn .. '/' .. ckey, running[2]) end
    end
    for _, rate in pairs(keyRates) do rate_save(rate, now) end
    if taken > 0 then
      if fnSlot then redis.call('HINCRBY', runningKey, fn, taken) end
      if fnRate then
        rate_take(fnRate, taken)
        rate_save(fnRate, now)
      end
    end
    if f[1] and redis.call('EXISTS', levelsKey) == 0 then
      redis.call('HDEL', featuresKey, 'p/' .. fn)
    end
    return chosen
  end
end

local served = nil
if ARGV[9] == '1' then
  served = {}
  for i = 7, #KEYS do served[string.sub(KEYS[i], #p + 3)] = true end
end

for i = 6, #KEYS do
  if #claimed >= want then break end
  -- Every job on a function's stream is of that function: its name is the key's tail.
  -- The sticky queue holds jobs of several: theirs is in their record.
  local fn = string.sub(KEYS[i], #p + 3)
  local sticky = served ~= nil and i == 6
  -- A sticky queue holds activations (plain jobs) of several functions: never limited.
  local f = select_limited and not sticky and redis.call('HMGET', featuresKey, 'p/' .. fn,
    'c/' .. fn, 'k/' .. fn, 'r/' .. fn, 'kr/' .. fn, 'x/' .. fn)
  local limited = f and (f[1] or f[2] or f[3] or f[4] or f[5] or f[6])
  while #claimed < want do
    -- {id, key, fields, slots} of the jobs to lease: fields are status, input, attempt,
    -- max_attempts, timeout_ms, parent, enqueued_at; slots are the concurrency slots the
    -- job takes ('f', 'k', 'fk'), given back when its lease ends (includes/slots.lua).
    local ready = {}
    if limited then
      ready = select_limited(KEYS[i], fn, f)  -- takes all it may in one pass
    else
      -- The plain path: no priorities, no keyed jobs, no limits.
      local entries = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT',
                                 math.min(want - #claimed, 1000))
      if #entries == 0 then break end
      -- These are the stream's oldest entries, so trimming below the id after the last
      -- one removes exactly them: whole nodes at once, where XDEL marks entry by entry.
      local ms, seq = string.match(entries[#entries][1], '^(%d+)-(%d+)$')
      redis.call('XTRIM', KEYS[i], 'MINID', '=', ms .. '-' .. string.format('%d', seq + 1))
      -- Cancel deletes its job's entry; an entry whose job is not queued anyway (its
      -- record deleted by hand, say) is dropped here.
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
    end
    for _, item in ipairs(ready) do
      local jobId, jobKey, job, fn, slots = item[1], item[2], item[3], item[4], item[5]
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
      if slots then
        redis.call('HSET', jobKey, 'status', 'running', 'attempt', attempt, 'token', token,
          'machine', machine, 'started_at', nowText, 'deadline', deadline, 'slots', slots)
      else
        redis.call('HSET', jobKey, 'status', 'running', 'attempt', attempt, 'token', token,
          'machine', machine, 'started_at', nowText, 'deadline', deadline)
      end
      leases[#leases + 1] = leaseUntil
      leases[#leases + 1] = jobId
      ids[#ids + 1] = jobId
      -- The token is a secret of the machine's: it stays out of the timeline, which
      -- readers of the job or run see.
      timeline_to(p, job[6] or jobId, jobId, maxlen, now, 'claimed', 'queued',
                  'machine', machine, 'attempt', attempt)
      -- The trace is the last field read: 12th on the limited path, 9th on the plain one.
      claimed[#claimed + 1] = {jobId, fn, job[2], tonumber(attempt), tonumber(job[4]),
                               token, timeoutMs, job[6] or '', job[7] or '',
                               job[limited and 12 or 9] or ''}
    end
    if limited then break end
  end
end
call_in_chunks('ZADD', leasesKey, leases)
call_in_chunks('SADD', machineJobsKey, ids)
return claimed
