--[[ put_webhook: create a webhook of the namespace (in its partition 0), and list it in
  that partition's copy of the namespace's webhooks (mirror_webhook copies it to the
  other partitions, where the run scripts read it: lua/includes/hook_event.lua).

  KEYS[1] webhook hash   {t:0}:hook:<id>
  KEYS[2] webhooks hash  {t:0}:hooks  (id -> event names, space-separated)
  ARGV[1] id   ARGV[2] events (space-separated)   ARGV[3] most webhooks a namespace holds
  ARGV[4..] field, value pairs of the webhook (url, secret, description, created_by)
  Returns {1} | {-4} (the id is taken) | {-5} (the namespace holds the most webhooks already)
]]
--@include now_ms
local hookKey, hooksKey = KEYS[1], KEYS[2]
local id, events = ARGV[1], ARGV[2]
if redis.call('EXISTS', hookKey) == 1 then return {-4} end
if redis.call('HLEN', hooksKey) >= tonumber(ARGV[3]) then return {-5} end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', hookKey, 'id', id, 'events', events, 'created_at', now_ms(),
           unpack(fields))
redis.call('HSET', hooksKey, id, events)
return {1}
