-- Key names of webhook deliveries, for scripts that find them at run time. They mirror
-- the hook methods of tether/queue/keys.py (PartitionKeys.hooks, hook_delivery...).
local function hooks_key(p) return p .. 'hooks' end
local function hook_delivery_key(p, id) return p .. 'hookd:' .. id end
local function hook_due_key(p) return p .. 'hook_due' end
local function hook_log_key(p, hookId) return p .. 'hook_log:' .. hookId end
local function hook_seq_key(p) return p .. 'hook_seq' end
