--[[ mirror_webhook: put (or remove) a webhook in one partition's copy of the
  namespace's webhooks, read by the run scripts of that partition
  (lua/includes/hook_event.lua). Partition 0's copy is written by put_webhook and
  delete_webhook themselves.

  KEYS[1] webhooks hash  {t:p}:hooks  (id -> event names, space-separated)
  KEYS[2] deliveries zset {t:p}:hook_log:<id> (deleted with the webhook)
  ARGV[1] id   ARGV[2] events (space-separated; '' removes the webhook)
  Returns {1}
]]
local hooksKey, id, events = KEYS[1], ARGV[1], ARGV[2]
if events == '' then
  redis.call('HDEL', hooksKey, id)
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', hooksKey, id, events)
end
return {1}
