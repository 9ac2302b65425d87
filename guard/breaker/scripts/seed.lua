-- Re-create a circuit that has no state (the caller got UNKNOWN). ARGV: state, generation,
-- opened_at_ms (0: now, for a restored OPEN/FORCED_OPEN), and a note: when the state restored
-- had to be repaired (stored.check_record), the note says what, and an event is recorded.
-- Writes only if the state is still missing, so processes restoring at once agree on one state.
-- Returns 1 if it wrote, else 0. The arguments are checked like a stored hash: a state that
-- does not exist becomes OPEN, a generation out of range 0, an opened-at in the future now.
-- The rules are left to the next decision ("first writer wins", as for any new circuit).
local H, EV = KEYS[1], KEYS[2]
local NAMES = {'closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled'}
CLOCK_FUNCTION
local function int_in(v, lo, hi)
  local n = tonumber(v)
  if n and n >= lo and n <= hi and n == math.floor(n) then return n end
  return nil
end
if redis.call('HEXISTS', H, 'st') == 1 then return 0 end
local now = now_ms()
local st = int_in(ARGV[1], 0, 5) or 1
local g = int_in(ARGV[2], 0, MAX_GENERATION) or 0
local oa = int_in(ARGV[3], 0, MAX_TIME_MS) or 0
if st ~= 1 and st ~= 3 then oa = 0 elseif oa == 0 or oa > now then oa = now end
redis.call('HSET', H, 'st', st, 'g', g, 'f', 0, 's', 0, 'oa', oa, 'pu', 0, 'ps', 0, 'ca', now,
           'oc', 0, 'lf', 0, 'cl', 0)
if ARGV[4] and ARGV[4] ~= '' and EV then
  redis.call('LPUSH', EV, cjson.encode({generation = g, from_state = NAMES[st + 1],
    to_state = NAMES[st + 1], reason = ARGV[4], failure_count = 0, success_count = 0,
    actor = '', host = ARGV[5] or '', pid = tonumber(ARGV[6]) or 0, occurred_at_ms = now}))
  redis.call('LTRIM', EV, 0, EVENTS_KEPT_LAST)
end
return 1
