--[[ ingest_logs: store the log lines a machine captured for jobs of one partition
  (Python `logging` inside a job's function, or inside a workflow's activation): each
  job's lines if and only if the job is held, or was last held, by this machine under
  the token given: a forged or guessed job id (another machine's job, another
  namespace's: its keys are under another tag and simply not found here) writes
  nothing. Lines of a workflow activation (a job with an `activation` field) go to its
  run's stream, beside the run's ctx.log lines; any other job's go to its own stream.

  KEYS[1] the job hash of the first job: it routes the call to the partition's slot;
          the other jobs' hashes are built from the prefix (same hash tag)
  ARGV[1] partition prefix  ARGV[2] machine id
  ARGV[3] maxlen of a job's stream (a run's stream keeps its run's `maxlen`)
  ARGV[4..] per job: job id, fencing token, lines the machine dropped for it (its buffer
          was full, counted on the record as `logs_dropped`), n, then its n lines (each
          a JSON object, in order)
  Each line is XADDed (event `logging`; ctx.log's lines are event `log`) with MAXLEN ~
  (the stream stays bounded); lines cut off its far end are counted on the record as
  `logs_trimmed`. A record that already expires (finished) gives its remaining time to
  the stream, so lines never outlive it; a job not finished yet is marked `logs` = 1, so
  the script that finishes it gives its stream the retention (includes/finish_job.lua).
  Followers hear one message for the call: `l:j/<job id> r/<run id> ...`.
  Returns one reply per job, in order: {1, trimmed}
          {-1, ''} no such job (or its run is gone)
          {-2, status} this machine never held this job under this token
]]
--@include now_ms
--@include keys
--@include run_keys
local p, machine, jobMaxlen = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local replies, topics = {}, {}
local i = 4
while i <= #ARGV do
  local jobId, token, dropped, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]) or 0,
                                   tonumber(ARGV[i + 3]) or 0
  local first, last = i + 4, i + 3 + n
  local jobKey = i == 4 and KEYS[1] or job_key(p, jobId)
  i = last + 1
  local job = redis.call('HMGET', jobKey, 'status', 'token', 'machine', 'parent',
                         'activation', 'logs')
  local streamKey, recordKey, maxlen, topic
  local extra = {}
  if not job[1] then
    replies[#replies + 1] = {-1, ''}
  elseif job[2] ~= token or job[3] ~= machine then
    replies[#replies + 1] = {-2, job[1]}
  else
    if job[5] and job[4] then
      recordKey, streamKey = run_key(p, job[4]), logs_key(p, job[4])
      maxlen = tonumber(redis.call('HGET', recordKey, 'maxlen'))
      extra, topic = {'run', job[4]}, 'r/' .. job[4]
    else
      recordKey, streamKey = jobKey, job_logs_key(p, jobId)
      maxlen, topic = jobMaxlen, 'j/' .. jobId
    end
    if not maxlen then
      replies[#replies + 1] = {-1, ''}  -- the run is gone
    else
      local trimmed = 0
      if n > 0 then
        local before = redis.call('XLEN', streamKey)
        for k = first, last do
          redis.call('XADD', streamKey, 'MAXLEN', '~', maxlen, '*', 'event', 'logging',
                     'at', now, 'line', ARGV[k], unpack(extra))
        end
        trimmed = before + n - redis.call('XLEN', streamKey)
        if trimmed > 0 then redis.call('HINCRBY', recordKey, 'logs_trimmed', trimmed) end
        local ttl = redis.call('PTTL', recordKey)
        if ttl > 0 then
          redis.call('PEXPIRE', streamKey, ttl)
        elseif recordKey == jobKey and not job[6] then
          redis.call('HSET', jobKey, 'logs', '1')
        end
      end
      if dropped > 0 then redis.call('HINCRBY', recordKey, 'logs_dropped', dropped) end
      if n > 0 or dropped > 0 then topics[#topics + 1] = topic end
      replies[#replies + 1] = {1, trimmed}
    end
  end
end
if #topics > 0 then
  redis.call('PUBLISH', notify_channel(p), 'l:' .. table.concat(topics, ' '))
end
return replies
