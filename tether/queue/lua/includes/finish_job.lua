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
-- `logs`: the job's `logs` field, if the caller read it (complete.lua does, with the
-- fields it reads anyway); nil: not read, so its log is given the retention blindly.
local function finish_job_quietly(p, jobKey, jobId, parent, status, now, retentionMs,
                                  fields, maxlen, logs)
  redis.call('HSET', jobKey, 'status', status, 'finished_at', stamp(now), unpack(fields))
  redis.call('PEXPIRE', jobKey, retentionMs)
  -- Its captured log lines (lua/ingest_logs.lua marks a job that has some with `logs`)
  -- expire with it. Skipped on the hot path for a job that logged nothing: a PEXPIRE
  -- of a missing key cost 5,500 Redis instructions a job (bench/redis_instructions.py).
  if logs ~= false then
    redis.call('PEXPIRE', job_logs_key(p, jobId), retentionMs)
  end
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
