-- Rate limits as GCRA (the generic cell rate algorithm, a token bucket kept as one
-- number): a limit of `n` per `period` ms lets a job start every period/n ms, with
-- bursts of up to n. The state is the theoretical arrival time `tat` (ms) in a string
-- key that expires when it no longer matters (a missing key: a full bucket).
-- `spec` is '<n> <period ms>' (QueueEngine.set_limits).
local function rate_open(key, spec, now)
  local n, period = string.match(spec, '^(%d+) (%d+)$')
  n, period = tonumber(n), tonumber(period)
  local interval = period / n
  local tat = math.max(tonumber(redis.call('GET', key) or '0') or 0, now)
  -- A start fits while tat + interval <= now + period; the small epsilon keeps float
  -- division from losing a whole start.
  local available = math.floor((now + period - tat) / interval + 1e-6)
  return {key = key, interval = interval, period = period, tat = tat,
          available = math.max(0, available)}
end

-- Spend `count` starts of an opened limit.
local function rate_take(r, count, now)
  r.tat = r.tat + count * r.interval
  r.available = r.available - count
  redis.call('SET', r.key, string.format('%.3f', r.tat), 'PX',
             math.max(1, math.ceil(r.tat - now)))
end

-- When (ms) the next start fits.
local function rate_next_at(r)
  return math.ceil(r.tat + r.interval - r.period)
end
