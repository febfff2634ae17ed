--[[ enqueue: create one or more jobs of one partition, each queued (on its function's
  ready stream) or delayed. The same job id, or the same idempotency key, returns the
  existing job: never two.

  KEYS[1] delayed zset     {t:p}:delayed
  KEYS[2] jobs index zset  {t:p}:jobs
  ARGV[1] partition prefix  ARGV[2] backoff ms  ARGV[3] backoff cap ms
  ARGV[4] retention ms      ARGV[5] notify channel  ARGV[6] timeline maxlen
  ARGV[7..] groups of 8, one per job: job id, function, input (JSON), max attempts,
            timeout ms (0 = none), delay ms, idempotency key ('' = none),
            parent run id ('' = none)
  The job hash {t:p}:job:<id>, ready stream {t:p}:q:<fn> and idempotency string
  {t:p}:idem:<key> of each job are named from the prefix (same hash tag as KEYS).
  Returns one reply per job, in order:
          {1, id, status, created (1|0)}
          {-4, existing id, existing function}  the id/key already names another function
]]
--@include now_ms
--@include keys
--@include timeline
local delayedKey, indexKey = KEYS[1], KEYS[2]
local p, backoffMs, backoffCapMs = ARGV[1], ARGV[2], ARGV[3]
local retentionMs, channel, maxlen = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local now = now_ms()

local function existing(id, fn)
  local found = redis.call('HMGET', job_key(p, id), 'fn', 'status')
  if not found[1] then return nil end
  if found[1] ~= fn then return {-4, id, found[1]} end
  return {1, id, found[2], 0}
end

local function enqueue(jobId, fn, input, maxAttempts, timeoutMs, delayMs, idem, parent)
  local idemKey = idem ~= '' and idempotency_key(p, idem)
  if idemKey then
    local known = redis.call('GET', idemKey)
    if known then
      local reply = existing(known, fn)
      if reply then return reply end
    end
  end
  local reply = existing(jobId, fn)
  if reply then return reply end

  local jobKey = job_key(p, jobId)
  local status = 'queued'
  -- The ready-stream entry id is kept on the job, so cancel can delete the entry.
  local entry = ''
  if delayMs > 0 then
    status = 'delayed'
    redis.call('ZADD', delayedKey, now + delayMs, jobId)
  else
    entry = redis.call('XADD', queue_key(p, fn), '*', 'id', jobId)
  end
  redis.call('HSET', jobKey, 'id', jobId, 'fn', fn, 'input', input, 'status', status,
    'attempt', 0, 'max_attempts', maxAttempts, 'timeout_ms', timeoutMs,
    'backoff_ms', backoffMs, 'backoff_max_ms', backoffCapMs, 'enqueued_at', now,
    'scheduled_at', now + delayMs, 'entry', entry)
  if parent ~= '' then
    redis.call('HSET', jobKey, 'parent', parent)
  end
  if idemKey then
    redis.call('SET', idemKey, jobId, 'PX', retentionMs)
  end
  redis.call('ZADD', indexKey, now, jobId)
  local owner = jobId
  if parent ~= '' then owner = parent end
  timeline_to(p, owner, jobId, maxlen, now, 'enqueued', '', 'status', status)
  if status == 'queued' then
    redis.call('PUBLISH', channel, 'q:' .. fn)
  end
  return {1, jobId, status, 1}
end

local replies = {}
for i = 7, #ARGV, 8 do
  replies[#replies + 1] = enqueue(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6], ARGV[i + 7])
end
return replies
