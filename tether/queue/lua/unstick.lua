--[[ unstick: activations that waited on the sticky queue of the machine keeping their run
  (see enqueue_activation) for their sticky timeout without being claimed go to their
  function's own queue, where any machine serving it may take them: a run never waits
  long on a busy, stuck or dead machine. The job stays `queued` (its entry on the sticky
  queue is dropped by whichever claim meets it after the job was taken).

  KEYS[1] sticky zset  {t:p}:sticky   (score: when the job may go to any machine)
  ARGV[1] partition prefix  ARGV[2] at most this many jobs
  Returns the number of jobs moved
]]
--@include now_ms
--@include keys
--@include run_keys
--@include make_ready
local p = ARGV[1]
local due = redis.call('ZRANGE', KEYS[1], '-inf', now_ms(), 'BYSCORE', 'LIMIT', 0,
                       tonumber(ARGV[2]))
local moved = 0
for _, jobId in ipairs(due) do
  redis.call('ZREM', KEYS[1], jobId)
  local jobKey = job_key(p, jobId)
  if redis.call('HGET', jobKey, 'status') == 'queued' then
    make_ready(p, jobKey, jobId, notify_channel(p))
    moved = moved + 1
  end
end
return moved
