--[[ create_api_key: record a new API key under a name no other key has, and its namespace.
  The key itself is never stored: only its SHA-256 (the record's key name).

  KEYS[1] names hash        {t}:apikeys             (name -> digest)
  KEYS[2] key record hash   {t}:apikey:<digest>
  KEYS[3] namespaces set    {t}:namespaces
  ARGV[1] name  ARGV[2] digest  ARGV[3] role  ARGV[4] namespace
  ARGV[5] allowed functions (JSON list of globs, or '' for any)
  Returns {1, created_ms}
          {-6, ''}   a key of that name exists already
]]
--@include now_ms
local namesKey, recordKey, namespacesKey = KEYS[1], KEYS[2], KEYS[3]
local name, digest, role, namespace, functions = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HSETNX', namesKey, name, digest) == 0 then return {-6, ''} end
local now = now_ms()
redis.call('HSET', recordKey, 'name', name, 'role', role, 'namespace', namespace,
           'functions', functions, 'created_ms', now, 'last_used_ms', '')
redis.call('SADD', namespacesKey, namespace)
return {1, now}
