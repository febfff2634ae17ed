--@include keys
-- Take a queued job off whatever holds it ready: the entry `entry` of its priority's
-- stream, or the list of jobs parked behind their concurrency key (`parked` is '1'). Every
-- script that ends or moves a queued job calls this, so no stale entry is left behind.
local function leave_ready(p, jobId, fn, entry, level, parked, ckey)
  if parked == '1' and ckey then
    redis.call('LREM', feature_key(p, 'kwait', fn, ckey), 1, jobId)
  elseif entry and entry ~= '' then
    local stream = queue_key(p, fn)
    if level and level ~= '0' then stream = feature_key(p, 'pq', fn, level) end
    redis.call('XDEL', stream, entry)
  end
end
