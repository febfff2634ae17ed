--[[ plane_pass: the orchestrator's record of whether the control plane could hear the
  machines, written at the start and at the end of every pass. Machines can only be heard
  while Redis, an orchestrator and at least one API replica are all up; when any of them
  was away, no heartbeat could arrive, so the clocks that count missed heartbeats (a
  machine's silence, a lease's deadline) must start again once the plane is back.

  'begin' notices such a gap, either of two kinds, and then sets `heard` (the time since
  which the plane has heard without a gap) to now:
  - the orchestrators were away: the last pass (of any orchestrator) ended more than
    ARGV[2] ms ago. Redis being down or unreachable shows here too: no pass completes;
  - every API replica was away: the newest liveness record in the apis zset is older
    than ARGV[2] ms (an empty zset, i.e. no API ever ran here, is no gap: an engine used
    without the HTTP API). Passes keep setting `heard` for as long as the silence lasts.
  machine_dead and reap then wait for the plane to have heard a machine for as long as
  they would have waited for its heartbeat (lua/machine_dead.lua, lua/reap.lua).
  'end' stamps the pass's end, so a long pass is not taken for a gap.
  The very first pass (no record yet) is no gap: there was no plane before it to miss.

  KEYS[1] plane hash  {t:p}:plane   (pass: end of the last pass ms; heard: ms)
  KEYS[2] apis zset   {t:p}:apis    (API replica id -> last alive ms)
  ARGV[1] 'begin' | 'end'   ARGV[2] longest gap that is not an outage, ms
  Returns {heard ms (0: never reset), ms since the last pass (-1: none),
           ms since the newest API record (-1: none), 1 if this pass found a gap else 0}
]]
--@include now_ms
local planeKey, apisKey = KEYS[1], KEYS[2]
local now = now_ms()
if ARGV[1] == 'end' then
  redis.call('HSET', planeKey, 'pass', now)
  return {tonumber(redis.call('HGET', planeKey, 'heard')) or 0, 0, -1, 0}
end
local maxGap = tonumber(ARGV[2])
local plane = redis.call('HMGET', planeKey, 'pass', 'heard')
local sincePass = plane[1] and now - tonumber(plane[1]) or -1
local newest = redis.call('ZRANGE', apisKey, 0, 0, 'REV', 'WITHSCORES')
local sinceApi = newest[2] and now - tonumber(newest[2]) or -1
local heard = tonumber(plane[2]) or 0
if sincePass > maxGap or sinceApi > maxGap then
  redis.call('HSET', planeKey, 'pass', now, 'heard', now)
  return {now, sincePass, sinceApi, 1}
end
redis.call('HSET', planeKey, 'pass', now)
return {heard, sincePass, sinceApi, 0}
