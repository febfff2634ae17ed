--@include keys
-- The ready stream of a job of `fn` with priority `level` (false, nil or '0': the plain
-- `q:<fn>`). Every other level has a stream of its own, listed in the function's levels
-- zset and flagged in the partition's features hash, so a claim looks for levels only
-- when some exist (docs/queue-features.md): the plain path pays one EXISTS per claim.
local function ready_stream(p, fn, level)
  if not level or level == '0' then return queue_key(p, fn) end
  redis.call('ZADD', feature_key(p, 'plv', fn), level, level)
  redis.call('HSET', feature_key(p, 'fx'), 'p/' .. fn, 1)
  return feature_key(p, 'pq', fn, level)
end
