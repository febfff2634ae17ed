--[[ put_schedule: create a schedule, or change the definition of the one of this name.
  Putting the same definition again (every worker registering its cron_jobs, each
  restart) changes nothing: the schedule keeps its next tick, its pause and its count.

  KEYS[1] schedule hash        {t:p}:sched:<name>
  KEYS[2] schedules zset       {t:p}:schedules  (name -> next tick, ms; paused: +inf)
  ARGV[1] name   ARGV[2] definition digest (the caller's hash of the fields below)
  ARGV[3] next tick (ms) of the new definition, from now
  ARGV[4] paused (1 | 0) for a new schedule    ARGV[5] source ('api' | 'worker')
  ARGV[6..] field, value pairs of the definition (kind, target, input, cron, every_ms,
            timezone, misfire, grace_ms, max_attempts, timeout_ms)
  Returns {1, created (1|0), changed (1|0)}
]]
--@include now_ms
local schedKey, indexKey = KEYS[1], KEYS[2]
local name, digest, nextFire = ARGV[1], ARGV[2], ARGV[3]
local found = redis.call('HMGET', schedKey, 'digest', 'paused')
if found[1] == digest then return {1, 0, 0} end
local now = now_ms()
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local created = 0
local paused = found[2]
if not found[1] then
  created, paused = 1, ARGV[4]
  redis.call('HSET', schedKey, 'name', name, 'created_at', now, 'fired', 0, 'rev', 0,
             'paused', paused, 'source', ARGV[5])
end
redis.call('HSET', schedKey, 'digest', digest, 'next_fire', nextFire, 'updated_at', now,
           unpack(fields))
-- A new revision: a pass that read the old definition cannot fire under it any more.
redis.call('HINCRBY', schedKey, 'rev', 1)
if paused == '1' then
  redis.call('ZADD', indexKey, '+inf', name)
else
  redis.call('ZADD', indexKey, nextFire, name)
end
return {1, created, 1}
