--[[ send_signal: deliver a named signal to a run. If the run waits on it, its step gets
  the payload and the run wakes, in this one step; otherwise the signal is buffered (in
  arrival order) until the run waits for that name, and its name is listed in the run's
  held_signals.

  KEYS[1] run hash      {t:p}:run:<id>
  KEYS[2] signals list  {t:p}:signals:<id>   (entries "<name>\n<payload JSON>")
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] signal name  ARGV[4] payload (JSON)
  ARGV[5] who sent it (the API key's name; '' when unknown), for the timeline
  Returns {1, 'woken' | 'buffered'}
          {-1, ''}          no such run
          {-3, run status}  the run is finished
]]
--@include now_ms
--@include step_json
--@include enqueue_activation
--@include resolve_wait
--@include finish_run
--@include held
local runKey, signalsKey = KEYS[1], KEYS[2]
local p, runId, name, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local run = redis.call('HMGET', runKey, 'status', 'wait_kind', 'wait_key', 'wait_pos',
                       'maxlen')
if not run[1] then return {-1, ''} end
if RUN_TERMINAL[run[1]] then return {-3, run[1]} end
local now = now_ms()
run_timeline(p, runId, tonumber(run[5]) or 1000, now, 'signal_received', 'name', name,
             'by', ARGV[5] or '')
if run[1] == 'waiting' and run[2] == 'signal' and run[3] == name then
  resolve_wait(p, runKey, runId, run[4], name, 'signal', 'completed', now,
               ',"result":' .. payload, 'signal_received')
  return {1, 'woken'}
end
redis.call('RPUSH', signalsKey, name .. '\n' .. payload)
held_add(runKey, 'held_signals', name, false)
return {1, 'buffered'}
