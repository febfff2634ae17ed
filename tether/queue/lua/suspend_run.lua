--[[ suspend_run: the workflow cannot go on until something happens (children finish, a
  timer, an approval, a signal). In one step: start the new child jobs and child runs
  (recorded as pending steps), record the wait, end the activation and free the machine's slot.
  If what it waits for has already happened (a child finished meanwhile, a decision or a
  signal came early, a timer is past due), the next activation is queued at once instead.

  KEYS[1] run hash            {t:p}:run:<id>
  KEYS[2] activation job hash {t:p}:job:<run>:a<n>
  KEYS[3] steps hash          {t:p}:steps:<id>
  KEYS[4] timers zset         {t:p}:timers
  KEYS[5] approvals hash      {t:p}:approvals:<id>
  KEYS[6] signals list        {t:p}:signals:<id>
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] activation job id  ARGV[4] token
  ARGV[5] machine id: the lease is (machine, token), both checked
  ARGV[6] kind: children | sleep | approval | signal
  ARGV[7] waiting_on (JSON object shown to users)
  ARGV[8] position of the waiting step ('' for children)
  ARGV[9] name: sleep step name, approval key or signal name ('' for children)
  ARGV[10] sleep duration or wait timeout in ms ('' = none)
  ARGV[11] positions of the awaited children, comma-separated
  ARGV[12] N new children
  ARGV[13..12+7N] per child: position, function (or workflow), input (JSON), max
    attempts, timeout ms, refusal ('' or an error JSON: the child cannot run, e.g. no
    machine ever registered its function; its step is recorded failed at once and
    nothing is started), version ('' for a job; else the child is a run of that
    workflow version, `<run>:w<position>`, in this run's partition; 0 if refused)
  ARGV[13+7N..] log lines (JSON)
  Returns {1, 'waiting'} | {1, 'queued'} (woken at once)
          {-1, ''} | {-2, job status} | {-3, run status}
]]
--@include now_ms
--@include keys
--@include run_keys
--@include run_timeline
--@include step_json
--@include enqueue_activation
--@include resolve_wait
--@include activation
--@include new_job
--@include new_run
--@include make_ready
local runKey, jobKey, stepsKey, timersKey, approvalsKey, signalsKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local p, runId, jobId, token, kind = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local pos, name, ms = ARGV[8], ARGV[9], tonumber(ARGV[10])
local refused = check_activation(runKey, jobKey, jobId, token, ARGV[5])
if refused then return refused end
local now = now_ms()
local r = redis.call('HMGET', runKey, 'maxlen', 'activations', 'trace')
local maxlen = tonumber(r[1]) or 1000
local nChildren = tonumber(ARGV[12])
run_logs(p, runId, maxlen, now, 13 + 7 * nChildren)
-- This machine keeps the run's replay suspended in memory (if it can); the next
-- begin_activation from it gets only the records written meanwhile.
end_activation(runKey, ARGV[5] .. '|' .. jobId)

-- A child's trace: the run's trace id and flags, under the span of the call that
-- started it, whose id follows from the child's id (tether.protocol.call_span_id: the
-- worker that reports the call's span computes the same one).
local function child_trace(childId)
  local trace = r[3]
  if not trace or #trace < 50 then return {} end
  local span = string.sub(redis.sha1hex(childId .. '/call'), 1, 16)
  if span == '0000000000000000' then span = '0000000000000001' end
  return {'trace', string.sub(trace, 1, 32) .. span .. string.sub(trace, 49)}
end

for i = 0, nChildren - 1 do
  local base = 13 + 7 * i
  local cpos, fn, refusal, version = ARGV[base], ARGV[base + 1], ARGV[base + 5], ARGV[base + 6]
  if redis.call('HEXISTS', stepsKey, cpos) == 1 then
    -- recorded already (a replay asking again): nothing to start
  elseif refusal ~= '' then
    local kind = 'call'
    if version ~= '' then kind = 'child' end
    redis.call('HSET', stepsKey, cpos, step_json(fn, kind, 'failed', now,
               ',"job":"","job_status":"refused","error":' .. refusal))
    run_timeline(p, runId, maxlen, now, 'child_refused', 'function', fn, 'position', cpos,
                 'error', refusal)
  elseif version ~= '' then
    -- A child run. A retried parent that re-runs a failed child needs a fresh id.
    local childId = runId .. ':w' .. cpos
    if redis.call('EXISTS', run_key(p, childId)) == 1 then
      childId = childId .. '.' .. r[2]
    end
    local pr = redis.call('HMGET', runKey, 'retention_ms', 'maxlen', 'act_max_attempts')
    local link = {'parent', runId, 'parent_step', cpos}
    for _, v in ipairs(child_trace(childId)) do link[#link + 1] = v end
    new_run(p, run_key(p, childId), runs_index_key(p), unversioned_key(p), childId, fn,
            version, ARGV[base + 2], now, pr[1], pr[2], pr[3], '', link)
    redis.call('HSET', stepsKey, cpos, step_json(fn, 'child', 'pending', now,
               ',"run":' .. cjson.encode(childId)))
    run_timeline(p, runId, maxlen, now, 'child_started', 'child_run', childId, 'workflow', fn,
                 'version', version, 'position', cpos)
  else
    -- A deterministic id; a retried run that re-runs a failed child needs a fresh one.
    local childId = runId .. ':c' .. cpos
    if redis.call('EXISTS', job_key(p, childId)) == 1 then
      childId = childId .. '.' .. r[2]
    end
    local childKey = job_key(p, childId)
    local fields = {'step', cpos}
    for _, v in ipairs(child_trace(childId)) do fields[#fields + 1] = v end
    new_job(childKey, fn, ARGV[base + 2], 'queued', ARGV[base + 3], ARGV[base + 4], now,
            runId, fields)
    redis.call('ZADD', jobs_index_key(p), now, childId)
    make_ready(p, childKey, childId, notify_channel(p))
    redis.call('HSET', stepsKey, cpos, step_json(fn, 'call', 'pending', now,
               ',"job":' .. cjson.encode(childId)))
    run_timeline(p, runId, maxlen, now, 'child_started', 'job', childId, 'function', fn,
                 'position', cpos)
  end
end

local function wait(wakeAt)
  redis.call('HSET', runKey, 'status', 'waiting', 'waiting_on', ARGV[7],
    'wait_kind', kind, 'wait_key', name, 'wait_pos', pos, 'wait_positions', ARGV[11],
    'wake_at', wakeAt or '', 'updated_at', now)
  if wakeAt then redis.call('ZADD', timersKey, wakeAt, runId) end
  run_timeline(p, runId, maxlen, now, 'waiting', 'kind', kind, 'name', name,
               'until', wakeAt or '')
  return {1, 'waiting'}
end

-- The deadline of a timed wait is fixed when the step is first recorded, so replays
-- never push it out.
local function deadline_of(recordJson)
  if recordJson then
    local rec = cjson.decode(recordJson)
    if rec['until'] then return tonumber(rec['until']) end
    return nil
  end
  if ms then return now + ms end
  return nil
end

if kind == 'children' then
  for cpos in string.gmatch(ARGV[11], '[^,]+') do
    if step_status(redis.call('HGET', stepsKey, cpos)) == 'pending' then
      return wait(nil)
    end
  end
  enqueue_activation(p, runKey, runId, now, 'children_finished')
  return {1, 'queued'}
end

local current = redis.call('HGET', stepsKey, pos)
if current and step_status(current) ~= 'pending' then
  enqueue_activation(p, runKey, runId, now, 'resolved')
  return {1, 'queued'}
end
local due = deadline_of(current)
if kind == 'approval' then
  local decision = redis.call('HGET', approvalsKey, name)
  if decision then
    held_remove(runKey, 'held_approvals', name)
    resolve_wait(p, runKey, runId, pos, name, kind, 'completed', now,
                 ',"result":' .. decision, 'approval_decided')
    return {1, 'queued'}
  end
elseif kind == 'signal' then
  local payload = pop_signal(runKey, signalsKey, name)
  if payload then
    resolve_wait(p, runKey, runId, pos, name, kind, 'completed', now,
                 ',"result":' .. payload, 'signal_received')
    return {1, 'queued'}
  end
elseif kind == 'sleep' and due and due <= now then
  resolve_wait(p, runKey, runId, pos, name, kind, 'completed', now, ',"result":null',
               'timer')
  return {1, 'queued'}
end
if not current then
  local extra = ''
  if due then extra = ',"until":' .. due end
  redis.call('HSET', stepsKey, pos, step_json(name, kind, 'pending', now, extra))
end
return wait(due)
