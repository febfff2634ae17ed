--[[ finish_delivery: record how an attempt of a webhook delivery went, if the attempt
  still holds the delivery's lease (a stale token changes nothing).

  KEYS[1] delivery hash  {t:p}:hookd:<id>
  KEYS[2] due zset       {t:p}:hook_due
  ARGV[1] delivery id   ARGV[2] token of the attempt
  ARGV[3] outcome: delivered | retrying | failed (gave up) | dropped (webhook deleted)
  ARGV[4] next try (ms, for 'retrying')   ARGV[5] HTTP status ('' none)
  ARGV[6] error ('' none)   ARGV[7] retention ms (of a finished delivery)
  ARGV[8] the request body sent (kept once, so every retry sends the same bytes)
  Returns {1} | {-1} (no such delivery) | {-2, state} (the token no longer holds it)
]]
--@include now_ms
local key, dueKey = KEYS[1], KEYS[2]
local id, token, outcome = ARGV[1], ARGV[2], ARGV[3]
local d = redis.call('HMGET', key, 'state', 'token')
if not d[1] then return {-1} end
if d[1] ~= 'delivering' or d[2] ~= token then return {-2, d[1]} end
local now = now_ms()
redis.call('HSET', key, 'state', outcome, 'token', '', 'last_code', ARGV[5],
           'last_error', ARGV[6], 'updated_at', now)
if ARGV[8] ~= '' and redis.call('HEXISTS', key, 'body') == 0 then
  redis.call('HSET', key, 'body', ARGV[8])
end
if outcome == 'retrying' then
  redis.call('HSET', key, 'next_at', ARGV[4])
  redis.call('ZADD', dueKey, tonumber(ARGV[4]), id)
else
  redis.call('HSET', key, 'next_at', '', 'finished_at', now)
  redis.call('ZREM', dueKey, id)
  redis.call('PEXPIRE', key, tonumber(ARGV[7]))
end
return {1}
