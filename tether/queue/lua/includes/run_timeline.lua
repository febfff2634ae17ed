--@include keys
--@include run_keys
-- Append one event to a run's timeline (the same stream its jobs write to).
local function run_timeline(p, runId, maxlen, now, event, ...)
  redis.call('XADD', timeline_key(p, runId), 'MAXLEN', '~', maxlen, '*',
    'event', event, 'run', runId, 'at', now, ...)
end

-- Log lines the workflow emitted (ctx.log), each a JSON object, in order. A line that
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
    run_timeline(p, runId, maxlen, now, 'log', 'line', line)
  end
  if mark then redis.call('HSET', run_key(p, runId), 'log_mark', mark) end
end
