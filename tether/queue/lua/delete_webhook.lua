--[[ delete_webhook: delete a webhook and its entry in partition 0's copy of the
  namespace's webhooks. Its deliveries not yet made are dropped when next claimed
  (finish_delivery 'dropped'); those made expire with the retention.

  KEYS[1] webhook hash   {t:0}:hook:<id>
  KEYS[2] webhooks hash  {t:0}:hooks
  ARGV[1] id
  Returns {1} | {-1} (no such webhook)
]]
local hookKey, hooksKey, id = KEYS[1], KEYS[2], ARGV[1]
if redis.call('EXISTS', hookKey) == 0 then return {-1} end
redis.call('DEL', hookKey)
redis.call('HDEL', hooksKey, id)
return {1}
