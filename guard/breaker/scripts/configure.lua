-- Replace the stored rules (``guard breaker configure``). ARGV: the rules (11 values), then
-- known_gen, reason, actor, host, pid. The state is untouched (an OPEN circuit's cooldown is
-- measured with the new value from now on), but the change is one of the circuit's: it bumps the
-- generation and is recorded as an event from the state to itself, so that PostgreSQL's history
-- holds every change an operator made. New window rules (type, size, minimum, rates, slow
-- duration) start an empty window: the calls recorded under the old ones are not comparable.
-- A circuit without state answers UNKNOWN (the caller restores it with SEED and asks again).
-- Reply: {the previous rules ('' when there were none; the window and growth fields as 0 when
-- they were stored without them), the reply of a transition}.
local names = {'cft', 'cst', 'ccd', 'cwt', 'cws', 'cwm', 'cfr', 'csd', 'csr', 'ccg', 'ccm'}
local known = int_in(ARGV[12], 0, MAX_GENERATION) or 0
local now = now_ms()
local mine = table.concat({ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
                           ARGV[8], ARGV[9], ARGV[10], ARGV[11]}, ',')
local c = load(ARGV[12], now, mine, true)
if not c then return {'', unknown(ARGV[12])} end
if c.g < known then c.g = known end
local reason = ARGV[13]
local from = c.st
if c.bad then
  reason = reason .. ' (repaired: ' .. c.bad .. ')'
  from = move(c, c.st, reason, now, ARGV[14], ARGV[15], ARGV[16])
end
-- the rules as stored (load dropped any it could not use)
local old = redis.call('HMGET', H, unpack(names))
local kv, window_changed = {}, false
for i = 1, 11 do
  kv[2 * i - 1], kv[2 * i] = names[i], ARGV[i]
  if i > 3 and i < 10 and (tonumber(old[i]) or 0) ~= tonumber(ARGV[i]) then
    window_changed = true
  end
end
redis.call('HSET', H, unpack(kv))
if window_changed then
  local epoch = tonumber(redis.call('HGET', H, 'we')) or 0
  redis.call('HSET', H, 'we', epoch + 1, 'wn', 0, 'wf', 0, 'wsl', 0, 'wp', 0)
end
c.cd, c.cg, c.cm = tonumber(ARGV[3]), tonumber(ARGV[10]), tonumber(ARGV[11])
if not c.bad then
  -- the change itself: a new generation, the same state and counters
  c.g = c.g + 1
  c.ef, c.es = c.f, c.s
  redis.call('HSET', H, 'g', c.g, 'ca', now)
  redis.call('LPUSH', EV, cjson.encode({generation = c.g, from_state = NAMES[c.st + 1],
    to_state = NAMES[c.st + 1], reason = reason, failure_count = c.f, success_count = c.s,
    actor = ARGV[14], host = ARGV[15], pid = tonumber(ARGV[16]), occurred_at_ms = now}))
  redis.call('LTRIM', EV, 0, EVENTS_KEPT_LAST)
end
local previous = ''
if old[1] then
  for i = 1, 11 do old[i] = old[i] or '0' end
  previous = table.concat(old, ',')
end
return {previous, reply(1, c, now, from, reason)}
