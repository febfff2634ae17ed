--[[ delete_webhook: delete a webhook, its entry in partition 0's copy of the
  namespace's webhooks and that partition's list of its deliveries. Its deliveries not
  yet made are dropped when next claimed (finish_delivery 'dropped'); those made expire
  with the retention.

  KEYS[1] webhook hash   {t:0}:hook:<id>
  KEYS[2] webhooks hash  {t:0}:hooks
  KEYS[3] deliveries zset {t:0}:hook_log:<id>
  ARGV[1] id
  Returns {1} | {-1} (no such webhook)
]]
local hookKey, hooksKey, id = KEYS[1], KEYS[2], ARGV[1]
if redis.call('EXISTS', hookKey) == 0 then return {-1} end
redis.call('DEL', hookKey)
redis.call('HDEL', hooksKey, id)
redis.call('DEL', KEYS[3])
return {1}
