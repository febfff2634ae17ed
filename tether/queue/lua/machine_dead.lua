--[[ machine_dead: a machine missed its heartbeats (or left); release all of its leases at
  once so its jobs run elsewhere now. Checks the heartbeat again inside the script, so a
  machine that came back in the meantime is left alone. A machine is dead only for
  heartbeats it missed while the plane could hear it: if the plane has not heard without
  a gap since the cutoff (KEYS[6]'s `heard` is after it: Redis, the orchestrators or
  every API were away, lua/plane_pass.lua), nobody is declared dead yet.

  KEYS[1] machines zset          {t:p}:machines
  KEYS[2] machine's jobs set     {t:p}:mjobs:<machine>
  KEYS[3] leases zset            {t:p}:leases
  KEYS[4] delayed zset           {t:p}:delayed
  KEYS[5] machine info hash      {t:p}:machine:<machine>
  KEYS[6] plane hash             {t:p}:plane
  KEYS[7] machine's sticky queue {t:p}:q:~<machine> (its queued activations go to their
          functions' queues at once: any machine serving them may take them)
  ARGV[1] partition prefix  ARGV[2] machine id
  ARGV[3] cutoff ms: dead only if its last heartbeat is at or before this ('+inf': leaving)
  ARGV[4] retention ms      ARGV[5] notify channel  ARGV[6] timeline maxlen
  Returns {1, {released job ids}} | {0, {}} the machine is alive (or unknown)
]]
--@include now_ms
--@include keys
--@include timeline
--@include drop_lease
--@include finish_job
--@include retry_or_die
--@include make_ready
local machinesKey, machineJobsKey, leasesKey, delayedKey, infoKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local p, machine = ARGV[1], ARGV[2]
local retentionMs, channel, maxlen = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local seen = redis.call('ZSCORE', machinesKey, machine)
if ARGV[3] ~= '+inf' then
  local cutoff = tonumber(ARGV[3])
  local heard = tonumber(redis.call('HGET', KEYS[6], 'heard') or '0')
  if not seen or tonumber(seen) > cutoff or heard > cutoff then return {0, {}} end
end

local now = now_ms()
local released = {}
local errorJson = cjson.encode({type = 'MachineLost',
  message = 'machine ' .. machine .. ' stopped sending heartbeats'})
for _, jobId in ipairs(redis.call('SMEMBERS', machineJobsKey)) do
  local jobKey = job_key(p, jobId)
  if redis.call('HGET', jobKey, 'status') == 'running' then
    drop_lease(p, leasesKey, jobKey, jobId)
    -- Retried at once (the work never failed), so no backoff is needed.
    retry_or_die(p, jobKey, delayedKey, jobId, now, errorJson, 1, 1, 0,
                 retentionMs, channel, maxlen, {})
    released[#released + 1] = jobId
  end
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[7], '-', '+')) do
  local jobId = entry[2][2]
  local jobKey = job_key(p, jobId)
  if redis.call('HGET', jobKey, 'status') == 'queued' then
    make_ready(p, jobKey, jobId, channel)
  end
end
redis.call('DEL', machineJobsKey, cancels_key(p, machine), infoKey, KEYS[7])
redis.call('ZREM', machinesKey, machine)
return {1, released}
