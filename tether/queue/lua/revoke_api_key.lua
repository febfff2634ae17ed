--[[ revoke_api_key: forget the key of a name; requests carrying it are refused from the
  moment each API process's cache of verified keys lets go of it (docs/security.md).
  The caller reads the name's digest first (to name the record in KEYS); the script
  checks it still holds.

  KEYS[1] names hash        {t}:apikeys   (name -> digest)
  KEYS[2] key record hash   {t}:apikey:<digest>
  ARGV[1] name  ARGV[2] digest
  Returns 1 when revoked, 0 when the name no longer names that key
]]
local namesKey, recordKey = KEYS[1], KEYS[2]
local name, digest = ARGV[1], ARGV[2]
if redis.call('HGET', namesKey, name) ~= digest then return 0 end
redis.call('HDEL', namesKey, name)
redis.call('DEL', recordKey)
return 1
