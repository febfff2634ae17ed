--[[ register_functions: record the specs of the functions a machine serves, all of them
  or, when the new names would take the registry past its limit, none. Names already
  there are always rewritten (a spec may change; a full registry still serves them).

  KEYS[1] function registry hash   {t:0}:functions   (field: name, value: spec JSON)
  ARGV[1] the most names the registry may hold
  ARGV[2..] name, spec JSON, name, spec JSON, ... (at most 1,000 pairs: the API's limit)
  Returns {1, names held after} when written; {0, names held, new names} when refused
]]
local registry = KEYS[1]
local limit = tonumber(ARGV[1])
local size = redis.call('HLEN', registry)
local names = {}
for i = 2, #ARGV, 2 do
  names[#names + 1] = ARGV[i]
end
if #names == 0 then return {1, size} end
local fresh = 0
local found = redis.call('HMGET', registry, unpack(names))
for i = 1, #names do
  if not found[i] then fresh = fresh + 1 end
end
if fresh > 0 and size + fresh > limit then
  return {0, size, fresh}
end
redis.call('HSET', registry, unpack(ARGV, 2, #ARGV))
return {1, size + fresh}
