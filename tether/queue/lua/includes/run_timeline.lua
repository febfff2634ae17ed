--@include keys
--@include run_keys
--@include hook_event
-- Timeline events that change a run's status, and the status they leave: each is also
-- published as `s:<run id> <status>` (RUN_STATUS in tether/queue/keys.py) for the API's
-- event stream (GET /v1/events). One PUBLISH per status change, none per step or log.
local RUN_STATUS_OF = {activation_queued = 'queued', activation_started = 'running',
  waiting = 'waiting', retry_scheduled = 'waiting', completed = 'completed',
  failed = 'failed', cancelled = 'cancelled'}

-- Append one event to a run's timeline (the same stream its jobs write to). A run's
-- history is never trimmed while it is open (its `created` event stays however long it
-- runs; ctx.continue_as_new keeps a loop's replay flat, not its timeline): it expires
-- with the run's other records after the retention. `maxlen` bounds its log lines.
local function run_timeline(p, runId, maxlen, now, event, ...)
  redis.call('XADD', timeline_key(p, runId), '*', 'event', event, 'run', runId, 'at', now,
             ...)
  local status = RUN_STATUS_OF[event]
  if status then
    redis.call('PUBLISH', notify_channel(p), 's:' .. runId .. ' ' .. status)
    hook_event(p, runId, status, now)
  end
end

-- Log lines the workflow emitted (ctx.log), each a JSON object, in order, on the run's
-- own bounded log stream (GET .../timeline merges it in). A line that
-- opens with its number ({"@":N,...}) has it stripped, and the run keeps the last N as
-- `log_mark`, so replays do not write the line again (see context.LOG_SLOTS).
local function run_logs(p, runId, maxlen, now, first)
  local mark = nil
  for i = first, #ARGV do
    local line = ARGV[i]
    local n, rest = string.match(line, '^{"@":(%d+),?(.*)$')
    if n then
      mark, line = n, '{' .. rest
    end
    redis.call('XADD', logs_key(p, runId), 'MAXLEN', '~', maxlen, '*', 'event', 'log',
               'run', runId, 'at', now, 'line', line)
  end
  if mark then redis.call('HSET', run_key(p, runId), 'log_mark', mark) end
end
