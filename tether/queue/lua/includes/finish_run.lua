--@include keys
--@include run_keys
--@include run_timeline
--@include step_json
--@include enqueue_activation

local RUN_TERMINAL = {completed = true, failed = true, cancelled = true}

-- A child run (ctx.child) ended: its outcome becomes the parent's step record, and the
-- parent wakes if it waits on its children and none is pending any more: as a child
-- job's end does (run_job_finished), in the same script. Parent and child share a
-- partition (the child's id starts with the parent's), so this stays one slot.
local function child_run_finished(p, parentId, pos, childId, status, result, err, now)
  local parentKey = run_key(p, parentId)
  local parent = redis.call('HMGET', parentKey, 'status', 'wait_kind', 'wait_positions',
                            'maxlen')
  if not parent[1] or RUN_TERMINAL[parent[1]] then return end
  local stepsKey = steps_key(p, parentId)
  local current = redis.call('HGET', stepsKey, pos)
  if not current then return end
  local rec = cjson.decode(current)  -- a pending record: no user payload in it
  if rec.status ~= 'pending' or rec.run ~= childId then return end
  local extra = ',"run":' .. cjson.encode(childId) .. ',"job_status":"' .. status .. '"' ..
    ',"since":' .. (rec.at or now)
  local stepStatus = 'completed'
  if status == 'completed' then
    if not result or result == '' then result = 'null' end
    extra = extra .. ',"result":' .. result
  else
    stepStatus = 'failed'
    if not err or err == '' then
      err = cjson.encode({type = 'ChildFailed', message = 'child run ' .. childId ..
        ' ended ' .. status})
    end
    extra = extra .. ',"error":' .. err
  end
  redis.call('HSET', stepsKey, pos, step_json(rec.name, 'child', stepStatus, now, extra))
  run_timeline(p, parentId, tonumber(parent[4]) or 1000, now, 'child_finished',
               'child_run', childId, 'position', pos, 'status', status)
  if parent[1] == 'waiting' and parent[2] == 'children' then
    for cpos in string.gmatch(parent[3] or '', '[^,]+') do
      if step_status(redis.call('HGET', stepsKey, cpos)) == 'pending' then return end
    end
    enqueue_activation(p, parentKey, parentId, now, 'children_finished')
  end
end

-- Move a run into a terminal state (completed, failed, cancelled): stamp it, start the
-- retention clock of all its records, drop it from every timer set, tell the listeners.
-- `fields` is a flat list of extra HSET field/value pairs.
local function finish_run(p, runKey, runId, status, now, fields)
  local r = redis.call('HMGET', runKey, 'status', 'retention_ms', 'maxlen')
  redis.call('HSET', runKey, 'status', status, 'finished_at', now, 'updated_at', now,
    'waiting_on', '', 'wait_kind', '', 'wait_key', '', 'wait_pos', '',
    'wait_positions', '', 'wake_at', '', 'act_job', '', unpack(fields))
  local retention = tonumber(r[2]) or 604800000
  for _, key in ipairs({runKey, steps_key(p, runId), approvals_key(p, runId),
                        signals_key(p, runId), timeline_key(p, runId),
                        logs_key(p, runId)}) do
    redis.call('PEXPIRE', key, retention)
  end
  redis.call('ZREM', timers_key(p), runId)
  redis.call('ZREM', run_deadlines_key(p), runId)
  redis.call('ZREM', unversioned_key(p), runId)
  run_timeline(p, runId, tonumber(r[3]) or 1000, now, status, 'prev', r[1] or '')
  -- Requests waiting for the run (GET ?wait=) hear it on the API's one subscription
  -- (message kinds: tether/queue/keys.py).
  redis.call('PUBLISH', notify_channel(p), 'r:' .. runId)
  local link = redis.call('HMGET', runKey, 'parent', 'parent_step', 'result', 'error')
  if link[1] and link[1] ~= '' then
    child_run_finished(p, link[1], link[2], runId, status, link[3], link[4], now)
  end
end
