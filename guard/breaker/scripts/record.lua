-- RECORD's body, after record_fast.lua and prelude.lua (see record_fast.lua).
local gen, outcome, probe = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local duration = tonumber(ARGV[7])
-- The clock is read once, and only when needed: a quiet reply (a count window's call that opens
-- nothing) needs none.
local now = 0
local function clock()
  if now == 0 then now = now_ms() end
  return now
end
local c = load(ARGV[1], 0, ARGV[6])
if not c then return unknown(ARGV[1]) end
local code, from, reason = 0, -1, ''
if c.bad then
  -- a repair is a transition: the outcome belongs to the generation before it (ignored)
  reason = 'repaired: ' .. c.bad
  from = move(c, c.st, reason, clock(), '', ARGV[4], ARGV[5])
elseif c.g == gen then
  if c.st == 0 then
    code = 1
    if outcome == 0 then
      c.f = c.f + 1
      c.lf = clock()
      if c.f >= c.ft then
        reason = c.f .. ' consecutive failures'
        from = move(c, 1, reason, clock(), '', ARGV[4], ARGV[5])
      else
        redis.call('HSET', H, 'f', c.f, 'lf', c.lf)
      end
    elseif outcome == 1 and c.f > 0 then
      c.f = 0
      redis.call('HSET', H, 'f', 0)
    end
    -- the failure-rate window, beside the consecutive rule (ignored outcomes count neither way)
    if from < 0 and c.wt ~= 0 and outcome ~= 2 then
      local slow = c.sd > 0 and duration > c.sd
      reason = record_in_window(c, outcome == 0, slow, c.wt == 2 and clock() or 0)
      if reason ~= '' then
        from = move(c, 1, reason, clock(), '', ARGV[4], ARGV[5])
      end
    end
  elseif c.st == 2 and probe == c.ps then
    code = 1
    if outcome == 0 then
      c.lf = clock()
      reason = 'probe failed'
      from = move(c, 1, reason, clock(), '', ARGV[4], ARGV[5])
    elseif outcome == 1 then
      c.s = c.s + 1
      if c.s >= c.nt then
        reason = c.s .. ' probe successes'
        from = move(c, 0, reason, clock(), '', ARGV[4], ARGV[5])
      else
        c.pu = 0
        redis.call('HSET', H, 's', c.s, 'pu', 0)
      end
    else
      c.pu = 0
      redis.call('HSET', H, 'pu', 0)
    end
  end
end
if code == 1 and from < 0 and c.st == 0 and c.f == 0 then return quiet(c) end
return reply(code, c, clock(), from, reason)
