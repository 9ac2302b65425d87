-- Manual action. ARGV: target state, reason, actor, host, pid, known_gen, the caller's rules
-- (never stored, see ``load``). The state it moves from is read in this very script, so the
-- event records what the circuit really was. A circuit without state answers UNKNOWN like a
-- decision (the caller restores it with SEED, from what PostgreSQL recorded, and asks again):
-- a reset of a circuit Redis lost must move from the state it had, not from a new "closed".
local known = int_in(ARGV[6], 0, MAX_GENERATION) or 0
local now = now_ms()
local c = load(ARGV[6], now, ARGV[7], true)
if not c then return unknown(ARGV[6]) end
if c.g < known then c.g = known end
local reason = ARGV[2]
if c.bad then reason = reason .. ' (repaired: ' .. c.bad .. ')' end
local from = move(c, tonumber(ARGV[1]), reason, now, ARGV[3], ARGV[4], ARGV[5])
return reply(1, c, now, from, reason)
