--[[ promote: move delayed jobs whose time has come to their ready streams.

  KEYS[1] delayed zset  {t:p}:delayed
  ARGV[1] partition prefix  ARGV[2] max jobs to move  ARGV[3] notify channel
  ARGV[4] timeline maxlen
  Returns the number of jobs made ready
]]
--@include now_ms
--@include keys
--@include timeline
--@include make_ready
--@include take_due
local delayedKey = KEYS[1]
local p, channel, maxlen = ARGV[1], ARGV[3], tonumber(ARGV[4])
local now = now_ms()
local moved = 0
for _, jobId in ipairs(take_due(delayedKey, now, ARGV[2])) do
  local jobKey = job_key(p, jobId)
  if redis.call('HGET', jobKey, 'status') == 'delayed' then
    make_ready(p, jobKey, jobId, channel)
    timeline(p, jobKey, jobId, maxlen, now, 'promoted', 'delayed')
    moved = moved + 1
  end
end
return moved
