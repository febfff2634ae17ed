--@include make_ready
--@include timeline
--@include finish_job
--@include hook_event
-- After a failed attempt (the lease already dropped): retry the job, or end it.
-- A retryable failure with attempts left is retried: at once when `immediate` is 1
-- (its machine died, the work never failed), else after exponential backoff with
-- jitter. Otherwise the job is `dead` (attempts used up) or `failed` (not retryable).
-- `jitter` in [0, 1) comes from the caller, because scripts must stay deterministic.
-- A job whose cancellation was requested is cancelled instead.
-- The backoff is the job's own (`backoff_ms`, `backoff_max_ms`: a run's jobs carry
-- theirs) or else the engine's, `backoff` = {base ms, cap ms} from the caller's ARGV;
-- a third item, when not '', is the exact delay the job asked for (arq's Retry(defer)).
-- Returns the job's new status.
local function retry_or_die(p, jobKey, delayedKey, jobId, now, errorJson,
                            retryable, immediate, jitter, retentionMs, channel, maxlen,
                            backoff)
  local job = redis.call('HMGET', jobKey, 'attempt', 'max_attempts', 'backoff_ms',
                         'backoff_max_ms', 'cancel_requested', 'parent')
  local parent = job[6]
  local owner = parent or jobId
  local attempt = tonumber(job[1]) or 0
  local maxAttempts = tonumber(job[2]) or 1
  redis.call('HSET', jobKey, 'error', errorJson)
  if job[5] == '1' then
    -- Somebody asked for this job to stop: it ends here, whatever the attempt count.
    timeline_to(p, owner, jobId, maxlen, now, 'cancelled', 'running', 'attempt', attempt)
    finish_job_quietly(p, jobKey, jobId, parent, 'cancelled', now, retentionMs, {},
                       maxlen)
    redis.call('PUBLISH', channel, 'j:' .. jobId)
    return 'cancelled'
  end
  if retryable == 1 and attempt < maxAttempts then
    if immediate == 1 then
      make_ready(p, jobKey, jobId, channel)
      timeline_to(p, owner, jobId, maxlen, now, 'retried', 'running', 'attempt', attempt)
      return 'queued'
    end
    local delay = tonumber(backoff[3])
    if not delay then
      local base = tonumber(job[3]) or tonumber(backoff[1])
      local cap = tonumber(job[4]) or tonumber(backoff[2])
      delay = math.min(cap, base * (2 ^ (attempt - 1)))
      -- "Equal jitter": half fixed, half random: retries spread out, never bunch at 0.
      delay = math.floor(delay / 2 + (delay / 2) * jitter)
    end
    redis.call('HSET', jobKey, 'status', 'delayed', 'scheduled_at', now + delay)
    redis.call('ZADD', delayedKey, now + delay, jobId)
    timeline_to(p, owner, jobId, maxlen, now, 'retry_scheduled', 'running',
                'attempt', attempt, 'delay_ms', delay)
    return 'delayed'
  end
  local status = 'dead'
  if retryable ~= 1 then
    status = 'failed'
  end
  timeline_to(p, owner, jobId, maxlen, now, status, 'running', 'attempt', attempt)
  if not parent then hook_job_event(p, jobKey, jobId, status, now) end
  finish_job_quietly(p, jobKey, jobId, parent, status, now, retentionMs, {}, maxlen)
  redis.call('PUBLISH', channel, 'j:' .. jobId)
  return status
end
