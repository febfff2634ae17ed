--@include enqueue_activation
--@include run_keys
--@include step_json
--@include run_timeline
--@include held
-- Record the outcome of the step a run waits on (an approval decided, a signal arrived,
-- a timer fired) and queue its next activation, all in the caller's one script.
-- `extra` is spliced into the step record (',"result":...' or ',"error":...').
-- `since` in the record: when the wait began (its pending record's time; now if it never
-- waited), for its trace span.
local function resolve_wait(p, runKey, runId, pos, name, kind, status, now, extra, reason)
  local stepsKey = steps_key(p, runId)
  local pending = redis.call('HGET', stepsKey, pos)
  local since = pending and cjson.decode(pending).at or now
  redis.call('HSET', stepsKey, pos, step_json(name, kind, status, now,
             extra .. ',"since":' .. since))
  enqueue_activation(p, runKey, runId, now, reason)
end

-- Take the oldest buffered signal `name` of a run: its payload (JSON text), or nil.
local function pop_signal(runKey, signalsKey, name)
  local prefix = name .. '\n'
  for _, entry in ipairs(redis.call('LRANGE', signalsKey, 0, -1)) do
    if string.sub(entry, 1, #prefix) == prefix then
      redis.call('LREM', signalsKey, 1, entry)
      held_remove(runKey, 'held_signals', name)
      return string.sub(entry, #prefix + 1)
    end
  end
  return nil
end
