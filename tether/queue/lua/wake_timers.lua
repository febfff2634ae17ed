--[[ wake_timers: wake the runs whose timer came due: a sleep ends, an approval or signal
  wait times out (its step fails with WaitTimeout), or a retry's backoff is over.
  Each run is checked inside the script (still waiting, wake time reached), so two
  orchestrators running this at once wake a run once.

  KEYS[1] timers zset  {t:p}:timers
  ARGV[1] partition prefix  ARGV[2] max runs to wake
  Returns the number of runs woken
]]
--@include now_ms
--@include run_keys
--@include step_json
--@include enqueue_activation
--@include resolve_wait
--@include take_due
local timersKey = KEYS[1]
local p = ARGV[1]
local now = now_ms()
local woken = 0
for _, runId in ipairs(take_due(timersKey, now, ARGV[2])) do
  local runKey = run_key(p, runId)
  local run = redis.call('HMGET', runKey, 'status', 'wake_at', 'wait_kind', 'wait_key',
                         'wait_pos')
  local wakeAt = tonumber(run[2])
  if run[1] == 'waiting' and wakeAt and wakeAt <= now then
    local kind, name, pos = run[3], run[4], run[5]
    if kind == 'sleep' then
      resolve_wait(p, runKey, runId, pos, name, kind, 'completed', now,
                   ',"result":null', 'timer')
    elseif kind == 'approval' or kind == 'signal' then
      local what = 'approval ' .. name
      if kind == 'signal' then what = 'signal ' .. name end
      local err = cjson.encode({type = 'WaitTimeout', message = 'no ' .. what ..
        ' arrived before its timeout'})
      resolve_wait(p, runKey, runId, pos, name, kind, 'failed', now, ',"error":' .. err,
                   'timeout')
    else
      enqueue_activation(p, runKey, runId, now, 'retry')
    end
    woken = woken + 1
  end
end
return woken
