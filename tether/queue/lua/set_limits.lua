--[[ set_limits: set or clear the concurrency and rate limits of one function in one
  partition (docs/queue-features.md). Not a job transition: it writes the function's
  fields of the features hash, which claims read (claim.lua). A freed or raised limit
  wakes the polls waiting for the function.

  KEYS[1] features hash  {t:p}:fx
  ARGV[1] function
  ARGV[2] concurrency: most running jobs of the function ('' = no limit)
  ARGV[3] key concurrency: most running jobs per concurrency key, for jobs that name no
          limit of their own ('' = 1)
  ARGV[4] rate: '<n> <period ms>', most starts of the function per period ('' = none)
  ARGV[5] key rate: '<n> <period ms>', most starts per concurrency key ('' = none)
  ARGV[6] notify channel
  Returns 1
]]
local featuresKey, fn = KEYS[1], ARGV[1]
local function put(kind, value)
  if value == '' then
    redis.call('HDEL', featuresKey, kind .. fn)
  else
    redis.call('HSET', featuresKey, kind .. fn, value)
  end
end
put('c/', ARGV[2])
put('k/', ARGV[3])
put('r/', ARGV[4])
put('kr/', ARGV[5])
redis.call('PUBLISH', ARGV[6], 'q:' .. fn)
return 1
