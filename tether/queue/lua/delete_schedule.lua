--[[ delete_schedule: remove a schedule. Jobs and runs it started are left as they are.

  KEYS[1] schedule hash   {t:p}:sched:<name>
  KEYS[2] schedules zset  {t:p}:schedules
  ARGV[1] name
  Returns {1}
          {-1}  no such schedule
]]
if redis.call('DEL', KEYS[1]) == 0 then return {-1} end
redis.call('ZREM', KEYS[2], ARGV[1])
return {1}
