--[[ complete: commit the results of one or more jobs of one partition, each if and only
  if the caller holds its lease: the job is running, leased to this machine, with this
  token. Anything else (a stale or forged token, another machine's job) changes nothing
  for that job; every job of the batch is judged on its own.

  KEYS[1] leases zset   {t:p}:leases
  ARGV[1] partition prefix  ARGV[2] retention ms  ARGV[3] notify channel
  ARGV[4] timeline maxlen   ARGV[5] machine id (the reporter)
  ARGV[6..] triples: job id, fencing token, result (JSON)
  The job hashes {t:p}:job:<id> are named from the prefix (same hash tag as KEYS): one
  call per batch instead of one per job is what makes batched reports cheap. The
  listeners hear of the whole batch in one message: 'j:<id> <id> ...'.
  Returns one reply per triple, in order:
          {1, 'completed'}
          {-1, ''}      no such job
          {-2, status}  this machine does not hold the lease with this token (stale,
                        forged, another machine's, or not running)
]]
--@include now_ms
--@include keys
--@include timeline
--@include drop_lease
--@include finish_job
local leasesKey = KEYS[1]
-- The retention stays text: a number passed to redis.call is printf-formatted each time.
local p, retentionMs, channel = ARGV[1], ARGV[2], ARGV[3]
local maxlen, machine = tonumber(ARGV[4]), ARGV[5]
local now = now_ms()
local replies = {}

-- First judge every triple, then drop all the accepted leases at once, then finish the
-- jobs. Dropping leases first keeps a full Redis (maxmemory, noeviction) from blocking
-- finished work: a script is refused only if its first write can grow memory.
local accepted, ended, seen = {}, {}, {}
for i = 6, #ARGV, 3 do
  local jobId, token = ARGV[i], ARGV[i + 1]
  local jobKey = job_key(p, jobId)
  local job = redis.call('HMGET', jobKey, 'status', 'token', 'attempt', 'machine', 'parent',
                         'cancel_requested', 'slots', 'logs')
  if not job[1] then
    replies[#replies + 1] = {-1, ''}
  elseif seen[jobId] then
    -- The same job twice in one batch: the first one completed it.
    replies[#replies + 1] = {-2, 'completed'}
  elseif job[1] ~= 'running' or job[2] ~= token or job[4] ~= machine then
    replies[#replies + 1] = {-2, job[1]}
  else
    seen[jobId] = true
    accepted[#accepted + 1] = {jobId, job, ARGV[i + 2], jobKey}
    ended[#ended + 1] = {jobId, job[4], job[6], job[7]}
    replies[#replies + 1] = {1, 'completed'}
  end
end
drop_leases(p, leasesKey, ended)

local finished = {}
for n, item in ipairs(accepted) do
  local jobId, job = item[1], item[2]
  timeline_to(p, job[5] or jobId, jobId, maxlen, now, 'completed', 'running',
              'attempt', job[3])
  finish_job_quietly(p, item[4], jobId, job[5], 'completed', now,
                     retentionMs, {'result', item[3]}, maxlen, job[8])
  finished[n] = jobId
end
if #finished > 0 then
  redis.call('PUBLISH', channel, 'j:' .. table.concat(finished, ' '))
end
return replies
