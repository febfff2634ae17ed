--[[ resume_schedule: fire a paused schedule's ticks again, from its first tick after
  now: the ticks of the pause are not fired (the caller works out that tick). Resuming
  a schedule that is not paused changes nothing.

  KEYS[1] schedule hash   {t:p}:sched:<name>
  KEYS[2] schedules zset  {t:p}:schedules
  ARGV[1] name   ARGV[2] revision read   ARGV[3] next tick (ms)
  Returns {1, was paused (1|0)}
          {-1}  no such schedule
          {-3}  redefined since it was read (the caller reads it again)
]]
--@include now_ms
local schedKey, indexKey = KEYS[1], KEYS[2]
local s = redis.call('HMGET', schedKey, 'paused', 'rev')
if not s[1] then return {-1} end
if s[1] ~= '1' then return {1, 0} end
if s[2] ~= ARGV[2] then return {-3} end
redis.call('HSET', schedKey, 'paused', 0, 'next_fire', ARGV[3], 'updated_at', now_ms())
redis.call('ZADD', indexKey, ARGV[3], ARGV[1])
return {1, 1}
