--[[ touch_api_key: note when a key was last used (API processes call this at most once a
  minute per key), without bringing back the record of a key revoked meanwhile.

  KEYS[1] key record hash   {t}:apikey:<digest>
  ARGV[1] last use (ms)
  Returns 1 when noted, 0 when the key is gone
]]
local recordKey = KEYS[1]
if redis.call('EXISTS', recordKey) == 0 then return 0 end
redis.call('HSET', recordKey, 'last_used_ms', ARGV[1])
return 1
