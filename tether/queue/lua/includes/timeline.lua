--@include keys
-- Append one event to the timeline of a job, or of its run when it has one.
-- The history is a by-product of the transitions, never a second write path.
local function timeline(p, jobKey, jobId, maxlen, now, event, prev, ...)
  local owner = redis.call('HGET', jobKey, 'parent') or jobId
  redis.call('XADD', timeline_key(p, owner), 'MAXLEN', '~', maxlen, '*',
    'event', event, 'job', jobId, 'prev', prev, 'at', now, ...)
end
