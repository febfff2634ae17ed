--@include keys
-- Append one event to the timeline of a job, or of its run when it has one.
-- The history is a by-product of the transitions, never a second write path.
-- `timeline_to` is for callers that already know the owner (the run, else the job):
-- it saves the HGET of the parent on the hot paths (enqueue, claim, complete).
-- A negative maxlen turns off the timelines of stand-alone jobs (the default: a stream
-- per job costs about 4 KB and three XADDs); events of a run's jobs still go to the
-- run's timeline, never trimmed while the run is open (QueueConfig.job_timeline_maxlen).
local function timeline_to(p, owner, jobId, maxlen, now, event, prev, ...)
  if owner ~= jobId then
    -- A run's history is not trimmed while the run is open (run_timeline.lua).
    redis.call('XADD', timeline_key(p, owner), '*',
      'event', event, 'job', jobId, 'prev', prev, 'at', now, ...)
    return
  end
  if maxlen < 0 then return end
  redis.call('XADD', timeline_key(p, owner), 'MAXLEN', '~', maxlen, '*',
    'event', event, 'job', jobId, 'prev', prev, 'at', now, ...)
end

local function timeline(p, jobKey, jobId, maxlen, now, event, prev, ...)
  local owner = redis.call('HGET', jobKey, 'parent') or jobId
  timeline_to(p, owner, jobId, maxlen, now, event, prev, ...)
end
