--[[ fire_schedule: a due tick of a schedule. Starts its job or run (id
  `sched:<name>:<tick ms>`, the tick's idempotency key) and moves the schedule's next tick
  on, in one step. The caller read the schedule and worked out, from its definition, which
  tick to fire (if any: a tick missed under the `skip` policy fires nothing) and the next
  tick; the script does it only if the schedule is still as read (same revision, same next
  tick, not paused), so of any number of orchestrators racing, one fires each tick.

  KEYS[1] schedule hash   {t:p}:sched:<name>
  KEYS[2] schedules zset  {t:p}:schedules
  ARGV[1] partition prefix   ARGV[2] name   ARGV[3] revision read
  ARGV[4] next tick read (ms)   ARGV[5] tick to fire (ms, '' = none)
  ARGV[6] new next tick (ms)    ARGV[7] workflow version ('' = none known; runs only)
  ARGV[8] retention ms   ARGV[9] job timeline maxlen   ARGV[10] run timeline maxlen
  ARGV[11] activation max attempts   ARGV[12] ticks passed over (missed, not fired)
  Returns {1, started id ('' = none), created (1|0)}
          {-1}  no such schedule
          {-3}  it changed since it was read (fired by another pass, paused, redefined)
]]
--@include now_ms
--@include start_scheduled
local schedKey, indexKey = KEYS[1], KEYS[2]
local p, name, rev, expected, tick, nextFire = ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  ARGV[5], ARGV[6]
local s = redis.call('HMGET', schedKey, 'rev', 'next_fire', 'paused')
if not s[1] then return {-1} end
if s[1] ~= rev or s[2] ~= expected or s[3] == '1' then return {-3} end
local now = now_ms()
local id, created = '', 0
if tick ~= '' then
  id = 'sched:' .. name .. ':' .. tick
  created = start_scheduled(p, schedKey, id, now, ARGV[7], ARGV[8], tonumber(ARGV[9]),
                            tonumber(ARGV[10]), ARGV[11])
  redis.call('HSET', schedKey, 'last_tick', tick, 'last_id', id, 'last_fired_at', now)
  redis.call('HINCRBY', schedKey, 'fired', created)
end
local missed = tonumber(ARGV[12])
if missed > 0 then redis.call('HINCRBY', schedKey, 'missed', missed) end
redis.call('HSET', schedKey, 'next_fire', nextFire)
redis.call('ZADD', indexKey, nextFire, name)
return {1, id, created}
