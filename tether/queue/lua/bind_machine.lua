--[[ bind_machine: a machine id belongs to the first key that acted as it; every later
  call checks the binding (and renews its expiry, so only ids silent for that long are
  freed).

  KEYS[1] owner string   {t:0}:owner:<machine>
  ARGV[1] the calling key's name  ARGV[2] expiry of the binding (ms)
  Returns the name of the key the machine id belongs to (ARGV[1] when it is the caller)
]]
local ownerKey = KEYS[1]
local caller, ttl = ARGV[1], ARGV[2]
local owner = redis.call('GET', ownerKey)
if owner and owner ~= caller then return owner end
redis.call('SET', ownerKey, caller, 'PX', ttl)
return caller
