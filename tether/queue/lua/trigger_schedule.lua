--[[ trigger_schedule: start a schedule's job or run now, off its cycle (paused or not),
  under the id `sched:<name>@<key>` (schedule names have no '@', so it is never the id
  of any schedule's tick, `sched:<name>:<ms>`). The next tick is left as it is.

  KEYS[1] schedule hash   {t:p}:sched:<name>
  ARGV[1] partition prefix   ARGV[2] name   ARGV[3] key ('' = Redis's clock in ms: a
  second trigger with the same key starts nothing)   ARGV[4] workflow version ('' = none)
  ARGV[5] retention ms   ARGV[6] job timeline maxlen   ARGV[7] run timeline maxlen
  ARGV[8] activation max attempts
  Returns {1, started id, created (1|0)}
          {-1}  no such schedule
]]
--@include now_ms
--@include start_scheduled
local schedKey = KEYS[1]
local p, name, key = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', schedKey) == 0 then return {-1} end
local now = now_ms()
if key == '' then key = tostring(now) end
local id = 'sched:' .. name .. '@' .. key
local created = start_scheduled(p, schedKey, id, now, ARGV[4], ARGV[5], tonumber(ARGV[6]),
                                tonumber(ARGV[7]), ARGV[8])
if created == 1 then
  redis.call('HSET', schedKey, 'last_id', id, 'last_fired_at', now)
end
return {1, id, created}
