--@include call_in_chunks
-- The members of a time-ordered zset whose time has come (score <= now), at most
-- `limit`, taken off it with one ZREM rather than one per member. The caller then
-- re-checks each record before acting; a member put back while it acts stays.
local function take_due(key, now, limit)
  local due = redis.call('ZRANGE', key, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  call_in_chunks('ZREM', key, due)
  return due
end
