-- One command for many members (`ZADD key s1 m1 s2 m2 ...`, `SADD key m1 m2 ...`)
-- instead of one per job: each redis.call from Lua has a fixed cost that dwarfs adding a
-- member. In chunks of 1000 arguments, so each fits in one unpack() (Lua's C stack);
-- 1000 is even, so ZADD's score/member pairs stay whole. `option` (e.g. 'XX') goes
-- right after the key.
local function call_in_chunks(command, key, args, option)
  for first = 1, #args, 1000 do
    local last = math.min(first + 999, #args)
    if option then
      redis.call(command, key, option, unpack(args, first, last))
    else
      redis.call(command, key, unpack(args, first, last))
    end
  end
end
