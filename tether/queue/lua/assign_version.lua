--[[ assign_version: a run created before any machine served its workflow gets the
  version a live machine now serves, and its first activation. Checks the run is still
  unversioned, so two orchestrators racing assign it once.

  KEYS[1] run hash          {t:p}:run:<id>
  KEYS[2] unversioned zset  {t:p}:unversioned
  ARGV[1] partition prefix  ARGV[2] run id  ARGV[3] version
  Returns 1 assigned | 0 nothing to do (already versioned, finished or gone)
]]
--@include now_ms
--@include enqueue_activation
local runKey, unversionedKey = KEYS[1], KEYS[2]
local p, runId, version = ARGV[1], ARGV[2], ARGV[3]
local run = redis.call('HMGET', runKey, 'status', 'version')
if run[1] ~= 'queued' or run[2] ~= '' then
  redis.call('ZREM', unversionedKey, runId)
  return 0
end
local now = now_ms()
redis.call('HSET', runKey, 'version', version)
redis.call('ZREM', unversionedKey, runId)
enqueue_activation(p, runKey, runId, now, 'version_assigned')
return 1
