--@include keys
--@include run_keys
--@include timeline
--@include finish_job
--@include leave_ready
-- Job expiry: a job enqueued with `expires` carries `expires_at` (ms) in its hash and an
-- entry in {t:p}:expiring; no other job has either, so the plain path pays nothing but
-- the claim's read of one absent field. "Not started" is "no `attempt` field": the claim
-- sets it on the first lease, and it stays once set (a release counts it back down to 0,
-- but the job did start). A job that has started is no longer subject to its expiry:
-- its retries follow its max_attempts and backoff.
local EXPIRED_ERROR = '{"type":"Expired","message":"not started before its expires time"}'

-- End a queued or delayed job that never started as `expired`: off its ready stream
-- (`entry`: its entry id, nil if the caller already took it off) or the delayed zset,
-- and off the expiry zset; its waiters hear of it as of any other end.
local function expire_job(p, jobKey, jobId, status, fn, entry, now, retentionMs, maxlen)
  if status == 'queued' then
    -- Its priority's stream or its key's parked list (docs/queue-features.md).
    local at = redis.call('HMGET', jobKey, 'priority', 'parked', 'ckey')
    leave_ready(p, jobId, fn, entry, at[1], at[2], at[3])
  else
    redis.call('ZREM', delayed_key(p), jobId)
  end
  redis.call('ZREM', expiring_key(p), jobId)
  timeline(p, jobKey, jobId, maxlen, now, 'expired', status)
  finish_job(p, jobKey, jobId, 'expired', now, retentionMs, notify_channel(p),
             {'error', EXPIRED_ERROR}, maxlen)
end

-- The claim's check of a queued job that has an `expires_at` (read with the job): past
-- it and never started, the job ends expired and is not handed out (true); else it is
-- leased now, so its expiry entry goes (false).
local function expired_on_claim(p, jobKey, jobId, attempt, expiresAt, now, retentionMs,
                                maxlen)
  if attempt then return false end
  if tonumber(expiresAt) <= now then
    -- The claim took the job's entry off the stream already.
    expire_job(p, jobKey, jobId, 'queued', nil, nil, now, retentionMs, maxlen)
    return true
  end
  redis.call('ZREM', expiring_key(p), jobId)
  return false
end
