--@include keys
-- Move a job into a terminal state: stamp it, start its retention clock and tell the
-- listeners. The caller has checked the source state and dropped any lease.
-- `fields` is a flat list of extra HSET field/value pairs.
local function finish_job(p, jobKey, eventsKey, jobId, status, now, retentionMs,
                          channel, fields)
  redis.call('HSET', jobKey, 'status', status, 'finished_at', now, unpack(fields))
  redis.call('PEXPIRE', jobKey, retentionMs)
  local parent = redis.call('HGET', jobKey, 'parent')
  if parent then
    -- A workflow waits on this child: the orchestrator's stream carries the news.
    redis.call('XADD', eventsKey, 'MAXLEN', '~', 100000, '*',
      'event', 'child_finished', 'job', jobId, 'run', parent, 'status', status)
  else
    redis.call('PEXPIRE', timeline_key(p, jobId), retentionMs)
  end
  redis.call('PUBLISH', channel, 'j:' .. jobId)
end
