--[[ partition_lease: an orchestrator replica takes, keeps or gives up the lease on one
  partition's time-driven work (promote, reap, dead machines, run timers). A lease only
  divides the work: every pass's scripts still check the state they move from, so two
  replicas that both believe they own a partition (one paused past its lease) move each
  item once.

  KEYS[1] owner string  {t:p}:owner  (the owning replica's id, expiring with the lease)
  ARGV[1] replica id  ARGV[2] lease ms  ARGV[3] 'take' | 'keep' | 'drop'
    take: own it if nobody does (SET NX PX), or keep it if this replica does;
    keep: extend it if this replica owns it;
    drop: give it up if this replica owns it (so another takes it at once).
  Returns 1 if this replica owns the partition after the call, else 0
]]
local owner = redis.call('GET', KEYS[1])
local mine = owner == ARGV[1]
local mode = ARGV[3]
if mode == 'drop' then
  if mine then redis.call('DEL', KEYS[1]) end
  return 0
end
if mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if mode == 'take' and not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
