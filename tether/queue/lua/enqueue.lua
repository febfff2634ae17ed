--[[ enqueue: create one or more jobs of one partition, each queued (on its function's
  ready stream) or delayed; one whose `expires` has already passed is created expired.
  The same job id, or the same idempotency key, returns the existing job: never two.
  Reused for another function, or with another input, it is refused (-4, -5): the key
  names one request, and a different one must not pass for it.

  KEYS[1] delayed zset     {t:p}:delayed
  KEYS[2] jobs index zset  {t:p}:jobs
  ARGV[1] partition prefix  ARGV[2] retention ms  ARGV[3] notify channel
            (one message per function that got ready jobs: 'q:<fn>' or 'q:<fn> <n>')
  ARGV[4] timeline maxlen
  ARGV[5..] groups of 13, one per job: job id, function, input (JSON), max attempts,
            timeout ms (0 = none), delay ms, idempotency key ('' = none),
            parent run id ('' = none), fresh (1: the id was just drawn at random by
            the caller, so no job can have it yet and the lookup is skipped; else 0),
            tags (a JSON object of the caller's labels, '' = none),
            expires: ms from now ('' = never; 0 or less: already past),
            trace (the compact trace context, tether.protocol.TraceContext.to_field;
            '' = none: the job's trace follows from its id, and no field is stored),
            queue options: '' (priority 0, no concurrency key), else
            '<priority> <key limit (0: the function's)> <concurrency key or nothing>'
            (docs/queue-features.md)
  The job hash {t:p}:job:<id>, ready stream {t:p}:q:<fn> (or {t:p}:pq:<priority>:<fn>,
  with {t:p}:plv:<fn> and {t:p}:fx), idempotency string {t:p}:idem:<key> and expiry zset
  {t:p}:expiring of each job are named from the prefix (same hash tag as KEYS).
  Returns one reply per job, in order:
          {1, id, status, created (1|0)}, and for a created job its enqueued_at (ms,
          Redis's clock) as a 5th item, so the API's answer shows the stored time
          {-4, existing id, existing function}  the id/key already names another function
          {-5, existing id, existing status, existing input}  ... a job of this function
            whose input is not the same text (the caller compares the two as JSON values:
            the same value written with its keys in another order is the same input)
]]
--@include now_ms
--@include keys
--@include timeline
--@include call_in_chunks
--@include new_job
--@include ready_stream
--@include expire_job
local delayedKey, indexKey = KEYS[1], KEYS[2]
local p, retentionMs, channel, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local now = now_ms()
-- Numbers passed to redis.call are formatted with printf on each call: format once.
local nowText = tostring(now)
-- The new jobs' index entries (score, id, ...), added in one ZADD at the end.
local indexed = {}
-- Ready-stream key by function: a batch's jobs mostly share one. The same for the
-- streams of other priorities (by level, then function), and the functions already
-- flagged as having keyed jobs.
local queues, levelQueues, keyed = {}, {}, {}

-- A new id (the common case: a key's first use) costs one HGET of a missing key; only a
-- reused one reads the existing job's status and input.
local function existing(id, fn, input)
  local key = job_key(p, id)
  local known = redis.call('HGET', key, 'fn')
  if not known then return nil end
  if known ~= fn then return {-4, id, known} end
  local found = redis.call('HMGET', key, 'status', 'input')
  if found[2] and found[2] ~= input then return {-5, id, found[1], found[2]} end
  return {1, id, found[1], 0}
end

local function enqueue(jobId, fn, input, maxAttempts, timeoutMs, delayMs, idem, parent,
                       fresh, tags, expires, trace, options)
  local idemKey = idem ~= '' and idempotency_key(p, idem)
  if idemKey then
    local known = redis.call('GET', idemKey)
    if known then
      local reply = existing(known, fn, input)
      if reply then return reply end
    end
  end
  if fresh ~= '1' then
    local reply = existing(jobId, fn, input)
    if reply then return reply end
  end

  local jobKey = job_key(p, jobId)
  local expiresAt = expires ~= '' and now + tonumber(expires)
  if expiresAt and expiresAt <= now then
    -- Its time is already past (an absolute `expires` before now): the job is created
    -- ended, so the caller learns at once, and the same key keeps answering with it.
    local ended = {'expires_at', tostring(expiresAt)}
    if tags ~= '' then ended[3], ended[4] = 'tags', tags end
    new_job(jobKey, fn, input, 'expired', maxAttempts, timeoutMs, nowText, parent, ended)
    if idemKey then redis.call('SET', idemKey, jobId, 'PX', retentionMs) end
    indexed[#indexed + 1] = nowText
    indexed[#indexed + 1] = jobId
    timeline_to(p, parent ~= '' and parent or jobId, jobId, maxlen, now, 'enqueued', '',
                'status', 'expired')
    finish_job(p, jobKey, jobId, 'expired', now, retentionMs, channel,
               {'error', EXPIRED_ERROR}, maxlen)
    return {1, jobId, 'expired', 1, now}
  end
  local status, field, value = 'queued', 'entry', nil
  -- Fields only a job with queue options has: the plain job's record stays as it was.
  local level, extra = nil, nil
  if options ~= '' then
    local limit, ckey
    level, limit, ckey = string.match(options, '^(%-?%d+) (%d+) ?(.*)$')
    extra = {}
    if level ~= '0' then extra[#extra + 1] = 'priority'; extra[#extra + 1] = level end
    if ckey ~= '' then
      extra[#extra + 1] = 'ckey'; extra[#extra + 1] = ckey
      if limit ~= '0' then extra[#extra + 1] = 'climit'; extra[#extra + 1] = limit end
      -- Claims of this function now look at each job's key (x: keyed jobs may exist).
      if not keyed[fn] then
        redis.call('HSET', feature_key(p, 'fx'), 'x/' .. fn, 1)
        keyed[fn] = true
      end
    end
  end
  if delayMs > 0 then
    status, field, value = 'delayed', 'scheduled_at', now + delayMs
    redis.call('ZADD', delayedKey, value, jobId)
  elseif level and level ~= '0' then
    local byFn = levelQueues[level]
    if not byFn then byFn = {}; levelQueues[level] = byFn end
    local queue = byFn[fn]
    if not queue then queue = ready_stream(p, fn, level); byFn[fn] = queue end
    value = redis.call('XADD', queue, '*', 'id', jobId)
  else
    -- The ready-stream entry id is kept on the job, so cancel can delete the entry.
    local queue = queues[fn]
    if not queue then queue = queue_key(p, fn); queues[fn] = queue end
    value = redis.call('XADD', queue, '*', 'id', jobId)
  end
  local fields = {field, value}
  if tags ~= '' then fields[3], fields[4] = 'tags', tags end
  if trace ~= '' then fields[#fields + 1], fields[#fields + 2] = 'trace', trace end
  if extra then
    for _, v in ipairs(extra) do fields[#fields + 1] = v end
  end
  if expiresAt then
    local at = tostring(expiresAt)
    fields[#fields + 1] = 'expires_at'
    fields[#fields + 1] = at
    redis.call('ZADD', expiring_key(p), at, jobId)
  end
  new_job(jobKey, fn, input, status, maxAttempts, timeoutMs, nowText, parent, fields)
  if idemKey then
    redis.call('SET', idemKey, jobId, 'PX', retentionMs)
  end
  indexed[#indexed + 1] = nowText
  indexed[#indexed + 1] = jobId
  local owner = jobId
  if parent ~= '' then owner = parent end
  timeline_to(p, owner, jobId, maxlen, now, 'enqueued', '', 'status', status)
  return {1, jobId, status, 1, now}
end

local replies = {}
-- Functions that got ready jobs, in order, and how many: one message per function
-- ('q:<fn>', or 'q:<fn> <n>' for n > 1 jobs), however big the batch.
local woken, readyCount = {}, {}
for i = 5, #ARGV, 13 do
  local reply = enqueue(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9],
    ARGV[i + 10], ARGV[i + 11], ARGV[i + 12])
  replies[#replies + 1] = reply
  local fn = ARGV[i + 1]
  if reply[4] == 1 and reply[3] == 'queued' then
    if not readyCount[fn] then woken[#woken + 1] = fn end
    readyCount[fn] = (readyCount[fn] or 0) + 1
  end
end
call_in_chunks('ZADD', indexKey, indexed)
for _, fn in ipairs(woken) do
  local n = readyCount[fn]
  redis.call('PUBLISH', channel, n == 1 and 'q:' .. fn or 'q:' .. fn .. ' ' .. n)
end
return replies
