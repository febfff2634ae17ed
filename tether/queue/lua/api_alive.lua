--[[ api_alive: an API replica says it is up (every quarter of the plane gap, from a task
  of its own; never per request). The orchestrator reads the newest record to tell
  whether machines could reach the plane at all (lua/plane_pass.lua).

  KEYS[1] apis zset  {t:p}:apis  (API replica id -> last alive ms)
  ARGV[1] replica id  ARGV[2] ms after which a silent replica's record is dropped
  Returns the server time (ms)
]]
--@include now_ms
local now = now_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return now
