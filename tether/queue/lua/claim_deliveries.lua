--[[ claim_deliveries: take the webhook deliveries that are due, each under a lease: the
  delivery stays in the due set, scored at the lease's end, so if this orchestrator dies
  mid-send another claims it then; while the lease runs no other orchestrator can, so
  however many orchestrators run, one sends each attempt.

  KEYS[1] due zset   {t:p}:hook_due  (delivery id -> when it is due, or its lease ends)
  ARGV[1] partition prefix   ARGV[2] most deliveries to claim   ARGV[3] lease ms
  ARGV[4] token (unguessable; the attempt number is appended)
  Returns {id, token, attempts, ...} for each delivery claimed
]]
--@include now_ms
--@include hook_keys
local dueKey, p = KEYS[1], ARGV[1]
local leaseMs, token = tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
local due = redis.call('ZRANGE', dueKey, '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(due) do
  local key = hook_delivery_key(p, id)
  local d = redis.call('HMGET', key, 'state', 'attempts')
  if not d[1] then
    redis.call('ZREM', dueKey, id)  -- expired or gone: nothing to send
  elseif d[1] == 'pending' or d[1] == 'retrying' or d[1] == 'delivering' then
    -- 'delivering' past its lease: the orchestrator that held it stopped mid-send.
    local attempts = (tonumber(d[2]) or 0) + 1
    local held = token .. ':' .. attempts
    redis.call('HSET', key, 'state', 'delivering', 'attempts', attempts, 'token', held,
               'next_at', now + leaseMs, 'updated_at', now)
    redis.call('ZADD', dueKey, now + leaseMs, id)
    out[#out + 1] = id
    out[#out + 1] = held
    out[#out + 1] = attempts
  else
    redis.call('ZREM', dueKey, id)  -- finished already
  end
end
return out
