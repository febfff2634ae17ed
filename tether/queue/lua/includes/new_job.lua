-- The one place a job hash is created: enqueue, the child jobs of suspend_run and the
-- activations of enqueue_activation all call it. Every field is paid for on the
-- hottest path (about 5,000 Redis instructions each, bench/redis_instructions.py), so a
-- record leaves out what its absence says: no `attempt` is 0, no `scheduled_at` is its
-- `enqueued_at`, no backoff fields are the engine's backoff (includes/retry_or_die.lua,
-- from QueueConfig), no `parent` is a job of no run. `fields` is a flat list of the
-- caller's further fields (where the job waits: `entry` or `scheduled_at`; a run's step).
local function new_job(jobKey, fn, input, status, maxAttempts, timeoutMs, nowText, parent,
                       fields)
  local args = {'fn', fn, 'input', input, 'status', status, 'max_attempts', maxAttempts,
                'timeout_ms', timeoutMs, 'enqueued_at', nowText}
  if parent ~= '' then
    args[#args + 1] = 'parent'
    args[#args + 1] = parent
  end
  for _, v in ipairs(fields) do args[#args + 1] = v end
  redis.call('HSET', jobKey, unpack(args))
end
