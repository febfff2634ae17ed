--[[ enqueue: create a job, queued (on its function's ready stream) or delayed.
  The same job id, or the same idempotency key, returns the existing job: never two.

  KEYS[1] job hash            {t:p}:job:<id>
  KEYS[2] ready stream        {t:p}:q:<fn>
  KEYS[3] delayed zset        {t:p}:delayed
  KEYS[4] idempotency string  {t:p}:idem:<key>  (any key of the partition when unused)
  KEYS[5] jobs index zset     {t:p}:jobs
  ARGV[1] partition prefix    ARGV[2] job id        ARGV[3] function
  ARGV[4] input (JSON)        ARGV[5] max attempts  ARGV[6] timeout ms (0 = none)
  ARGV[7] delay ms            ARGV[8] backoff ms    ARGV[9] backoff cap ms
  ARGV[10] 1 to use KEYS[4]   ARGV[11] retention ms ARGV[12] parent run id ('' = none)
  ARGV[13] notify channel     ARGV[14] timeline maxlen
  Returns {1, id, status, created (1|0)}
          {-4, existing id, existing function}  same id/key already names another function
]]
--@include now_ms
--@include keys
--@include timeline
local jobKey, readyKey, delayedKey, idemKey, indexKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local p, jobId, fn = ARGV[1], ARGV[2], ARGV[3]
local delayMs = tonumber(ARGV[7])
local useIdem = ARGV[10] == '1'
local retentionMs = tonumber(ARGV[11])
local channel, maxlen = ARGV[13], tonumber(ARGV[14])

local function existing(id)
  local found = redis.call('HMGET', job_key(p, id), 'fn', 'status')
  if not found[1] then return nil end
  if found[1] ~= fn then return {-4, id, found[1]} end
  return {1, id, found[2], 0}
end

if useIdem then
  local known = redis.call('GET', idemKey)
  if known then
    local reply = existing(known)
    if reply then return reply end
  end
end
local reply = existing(jobId)
if reply then return reply end

local now = now_ms()
local status = 'queued'
-- The ready-stream entry id is kept on the job, so cancel can delete the entry.
local entry = ''
if delayMs > 0 then
  status = 'delayed'
  redis.call('ZADD', delayedKey, now + delayMs, jobId)
else
  entry = redis.call('XADD', readyKey, '*', 'id', jobId)
end
redis.call('HSET', jobKey, 'id', jobId, 'fn', fn, 'input', ARGV[4], 'status', status,
  'attempt', 0, 'max_attempts', ARGV[5], 'timeout_ms', ARGV[6], 'backoff_ms', ARGV[8],
  'backoff_max_ms', ARGV[9], 'enqueued_at', now, 'scheduled_at', now + delayMs,
  'entry', entry)
if ARGV[12] ~= '' then
  redis.call('HSET', jobKey, 'parent', ARGV[12])
end
if useIdem then
  redis.call('SET', idemKey, jobId, 'PX', retentionMs)
end
redis.call('ZADD', indexKey, now, jobId)
local owner = jobId
if ARGV[12] ~= '' then owner = ARGV[12] end
timeline_to(p, owner, jobId, maxlen, now, 'enqueued', '', 'status', status)
if status == 'queued' then
  redis.call('PUBLISH', channel, 'q:' .. fn)
end
return {1, jobId, status, 1}
