--[[ pause_schedule: stop firing a schedule's ticks until it is resumed (a trigger still
  starts it). Pausing a paused schedule changes nothing.

  KEYS[1] schedule hash   {t:p}:sched:<name>
  KEYS[2] schedules zset  {t:p}:schedules
  ARGV[1] name
  Returns {1, was paused (1|0)}
          {-1}  no such schedule
]]
--@include now_ms
local schedKey, indexKey = KEYS[1], KEYS[2]
local paused = redis.call('HGET', schedKey, 'paused')
if not paused then return {-1} end
if paused == '1' then return {1, 1} end
redis.call('HSET', schedKey, 'paused', 1, 'updated_at', now_ms())
redis.call('ZADD', indexKey, '+inf', ARGV[1])
return {1, 0}
