--[[ decide_approval: record a human's decision on an approval key of a run, once. If the
  run waits on that key, its step gets the decision and the run wakes, in this one step;
  otherwise the decision is kept until the run asks for it, and its key is listed in
  the run's held_approvals.

  KEYS[1] run hash         {t:p}:run:<id>
  KEYS[2] approvals hash   {t:p}:approvals:<id>
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] approval key
  ARGV[4] decision (JSON object: approved, by, comment, data; "at" is added here)
  Returns {1, decision, 'woken' | 'stored'}
          {-1, ''}            no such run
          {-3, run status}    the run is finished
          {-6, decision}      this key was decided already (the first decision stands)
]]
--@include now_ms
--@include step_json
--@include enqueue_activation
--@include resolve_wait
--@include finish_run
--@include held
local runKey, approvalsKey = KEYS[1], KEYS[2]
local p, runId, key = ARGV[1], ARGV[2], ARGV[3]
local run = redis.call('HMGET', runKey, 'status', 'wait_kind', 'wait_key', 'wait_pos',
                       'maxlen')
if not run[1] then return {-1, ''} end
local existing = redis.call('HGET', approvalsKey, key)
if existing then return {-6, existing} end
if RUN_TERMINAL[run[1]] then return {-3, run[1]} end
local now = now_ms()
local decision = with_at(ARGV[4], now)
redis.call('HSET', approvalsKey, key, decision)
local approved = cjson.decode(decision).approved
run_timeline(p, runId, tonumber(run[5]) or 1000, now, 'approval_decided', 'key', key,
             'approved', tostring(approved))
if run[1] == 'waiting' and run[2] == 'approval' and run[3] == key then
  resolve_wait(p, runKey, runId, run[4], key, 'approval', 'completed', now,
               ',"result":' .. decision, 'approval_decided')
  return {1, decision, 'woken'}
end
held_add(runKey, 'held_approvals', key, false)
return {1, decision, 'stored'}
