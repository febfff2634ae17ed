--[[ job_timings: read what the metrics of finished attempts need; changes nothing.
  One call for a batch of jobs of one partition (tether/queue/timings.py), so the API
  parses one reply instead of one per job.

  KEYS[1..] job hashes   {t:p}:job:<id>
  Returns a flat array, six items per key, in order: fn, status, scheduled_at,
  enqueued_at, started_at, finished_at (nil where the hash or the field is missing).
]]
local out = {}
for i = 1, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 'fn', 'status', 'scheduled_at', 'enqueued_at',
                         'started_at', 'finished_at')
  for j = 1, 6 do out[#out + 1] = row[j] end
end
return out
