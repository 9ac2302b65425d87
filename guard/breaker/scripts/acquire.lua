-- May I call? ARGV: probe_lease_ms, known_gen, host, pid, the caller's rules.
-- Performs OPEN -> HALF_OPEN when the cooldown is over, and hands out the single probe lease.
local lease = tonumber(ARGV[1])
local now = now_ms()
local c = load(ARGV[2], now, ARGV[5])
if not c then return unknown(ARGV[2]) end
local code, from, reason = 1, -1, ''
if c.bad then
  -- a repair is a transition to the repaired state (an OPEN one with a fresh cooldown, so the
  -- cooldown check below rejects without a second transition)
  reason = 'repaired: ' .. c.bad
  from = move(c, c.st, reason, now, '', ARGV[3], ARGV[4])
end
if c.st == 1 then
  if now < c.oa + cooldown(c) then
    code = 0
  else
    reason = 'cooldown elapsed'
    from = move(c, 2, reason, now, '', ARGV[3], ARGV[4])
  end
end
if c.st == 2 then
  if c.pu > now then
    code = 0
  else
    c.ps = c.ps + 1
    c.pu = now + lease
    redis.call('HSET', H, 'ps', c.ps, 'pu', c.pu)
    code = 2
  end
elseif c.st == 3 then
  code = 0
end
return reply(code, c, now, from, reason)
