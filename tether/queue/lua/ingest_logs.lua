--[[ ingest_logs: store the log lines a machine captured for one job (Python `logging`
  inside the job's function, or inside a workflow's activation), if and only if the job
  is held, or was last held, by this machine under this token: a forged or guessed job
  id (another machine's job, another namespace's: its keys are under another tag and
  simply not found here) writes nothing. Lines of a workflow activation (a job with an
  `activation` field) go to its run's stream, beside the run's ctx.log lines; any other
  job's go to its own stream.

  KEYS[1] job hash            {t:p}:job:<id>
  ARGV[1] partition prefix  ARGV[2] job id  ARGV[3] fencing token  ARGV[4] machine id
  ARGV[5] maxlen of a job's stream (a run's stream keeps its run's `maxlen`)
  ARGV[6] lines the machine dropped for this job (its buffer was full), counted on the
          record as `logs_dropped`
  ARGV[7..] the lines, each a JSON object, in order
  Each line is XADDed (event `logging`; ctx.log's lines are event `log`) with MAXLEN ~
  (the stream stays bounded); lines cut off its far end are counted on the record as
  `logs_trimmed`. A record that already expires (finished) gives its remaining time to
  the stream, so lines never outlive it; a job not finished yet is marked `logs` = 1, so
  the script that finishes it gives its stream the retention (includes/finish_job.lua).
  Followers hear `l:j/<job id>` or `l:r/<run id>` on the partition's notify channel.
  Returns {1, trimmed} | {-1, ''} no such job (or its run is gone)
          {-2, status} this machine never held this job under this token
]]
--@include now_ms
--@include keys
--@include run_keys
local jobKey = KEYS[1]
local p, jobId, token, machine = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = redis.call('HMGET', jobKey, 'status', 'token', 'machine', 'parent', 'activation',
                       'logs')
if not job[1] then return {-1, ''} end
if job[2] ~= token or job[3] ~= machine then return {-2, job[1]} end
local streamKey, recordKey, maxlen, topic
local extra = {}
if job[5] and job[4] then
  recordKey, streamKey = run_key(p, job[4]), logs_key(p, job[4])
  maxlen = tonumber(redis.call('HGET', recordKey, 'maxlen'))
  if not maxlen then return {-1, ''} end  -- the run is gone
  extra, topic = {'run', job[4]}, 'l:r/' .. job[4]
else
  recordKey, streamKey = jobKey, job_logs_key(p, jobId)
  maxlen, topic = tonumber(ARGV[5]), 'l:j/' .. jobId
end
local now = now_ms()
local n = #ARGV - 6
local trimmed = 0
if n > 0 then
  local before = redis.call('XLEN', streamKey)
  for i = 7, #ARGV do
    redis.call('XADD', streamKey, 'MAXLEN', '~', maxlen, '*', 'event', 'logging', 'at', now,
               'line', ARGV[i], unpack(extra))
  end
  trimmed = before + n - redis.call('XLEN', streamKey)
  if trimmed > 0 then redis.call('HINCRBY', recordKey, 'logs_trimmed', trimmed) end
  local ttl = redis.call('PTTL', recordKey)
  if ttl > 0 then
    redis.call('PEXPIRE', streamKey, ttl)
  elseif recordKey == jobKey and not job[6] then
    -- The job is not finished: mark it, so finishing gives its log the retention.
    redis.call('HSET', jobKey, 'logs', '1')
  end
end
local dropped = tonumber(ARGV[6]) or 0
if dropped > 0 then redis.call('HINCRBY', recordKey, 'logs_dropped', dropped) end
if n > 0 or dropped > 0 then redis.call('PUBLISH', notify_channel(p), topic) end
return {1, trimmed}
