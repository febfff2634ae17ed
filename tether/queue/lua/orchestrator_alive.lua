--[[ orchestrator_alive: an orchestrator replica says it is up and learns who else is, to
  size its share of the partitions (tether/orchestrator/shares.py). Called every third
  of a partition lease by each replica that divides the partitions.

  KEYS[1] orchestrators zset  {t:0}:orchestrators  (replica id -> last alive ms)
  ARGV[1] replica id  ARGV[2] ms after which a silent replica is no longer counted (and
  its record is dropped)  ARGV[3] 'leave' (optional): the replica is stopping, drop it
  Returns the ids of the replicas alive now, this one included, in id order
]]
--@include now_ms
local now = now_ms()
if ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local alive = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(alive)
return alive
