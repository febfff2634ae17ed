--@include keys
--@include run_job_finished
-- A number passed to redis.call is printf-formatted each time; a script finishes many
-- jobs at one `now`, so its text is made once.
local stampOf, stampText
local function stamp(now)
  if now ~= stampOf then stampOf, stampText = now, tostring(now) end
  return stampText
end

-- Move a job into a terminal state: stamp it, start its retention clock and tell the
-- listeners. The caller has checked the source state and dropped any lease.
-- `fields` is a flat list of extra HSET field/value pairs.
-- A job of a workflow run (a child call or an activation) reports to its run in this
-- same script, so a run waiting on its children wakes atomically with the last one
-- finishing: there is no window in which the news could be lost.
-- `finish_job_quietly` is for callers that already read the job's parent (false: none)
-- and publish the news themselves, one message for a whole batch (complete.lua).
-- `maxlen` is the caller's timeline maxlen: negative, stand-alone jobs have no timeline
-- of their own to expire (lua/includes/timeline.lua).
local function finish_job_quietly(p, jobKey, jobId, parent, status, now, retentionMs,
                                  fields, maxlen)
  redis.call('HSET', jobKey, 'status', status, 'finished_at', stamp(now), unpack(fields))
  redis.call('PEXPIRE', jobKey, retentionMs)
  -- Its captured log lines (lua/ingest_logs.lua) expire with it. On a job that logged
  -- nothing this is a no-op on a missing key (measured: bench/redis_instructions.py).
  redis.call('PEXPIRE', job_logs_key(p, jobId), retentionMs)
  if parent then
    run_job_finished(p, jobKey, jobId, parent, status, now)
  elseif maxlen >= 0 then
    redis.call('PEXPIRE', timeline_key(p, jobId), retentionMs)
  end
end

local function finish_job(p, jobKey, jobId, status, now, retentionMs, channel, fields,
                          maxlen)
  finish_job_quietly(p, jobKey, jobId, redis.call('HGET', jobKey, 'parent'),
                     status, now, retentionMs, fields, maxlen)
  redis.call('PUBLISH', channel, 'j:' .. jobId)
end
