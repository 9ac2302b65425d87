"""Lua scripts run by Redis: one script, one round trip, per breaker decision.

Each circuit is one hash ``guard:breaker:{KEY}`` (fields: ``st`` state code, ``g`` generation,
``f`` consecutive failures, ``s`` HALF_OPEN successes, ``oa`` opened-at ms, ``pu`` probe lease
end ms, ``ps`` probe sequence, ``ca`` changed-at ms, and the circuit's rules: ``cft`` failure
threshold, ``cst`` success threshold, ``ccd`` cooldown ms) plus a capped list
``guard:breaker:{KEY}:events`` of the last transitions. Both names carry the same hash tag, so
a script touching both runs on one Redis Cluster node. Time always comes from Redis ``TIME``
(allowed in writing scripts since Redis 5 replicates scripts by effects), so processes with
skewed clocks agree on when a cooldown ends.

A circuit without state in Redis (never used, or evicted by a Redis under ``maxmemory``) is
never silently created CLOSED by a decision: ``ACQUIRE`` and ``RECORD`` answer ``UNKNOWN``
(code 9) and write nothing, and the caller re-creates it with ``SEED`` (from the state
PostgreSQL recorded, or CLOSED with the generation it last knew for a new circuit) and asks
again. A missing hash costs nothing on the hot path: the scripts read the hash anyway. Only a
manual action (``CONTROL``) creates a missing circuit itself, since it sets the state.

The rules are stored by the first script that finds none (the caller's values, "first writer
wins") or by ``guard breaker configure``; from then on every decision uses the stored values,
whatever the calling process was configured with, so processes configured differently still
agree on one circuit. The success hot path of ``RECORD`` needs no rule at all.
"""

from __future__ import annotations

EVENTS_KEPT = 50

# Reply code of ACQUIRE/RECORD for a circuit that has no state in Redis (see the docstring).
UNKNOWN_CODE = 9


def hash_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}"


def events_key(key: str) -> str:
    return f"guard:breaker:{{{key}}}:events"


def key_from_hash_key(redis_key: str) -> str | None:
    prefix, suffix = "guard:breaker:{", "}"
    if redis_key.startswith(prefix) and redis_key.endswith(suffix):
        return redis_key[len(prefix) : -len(suffix)]
    return None


_PRELUDE = """
local H, EV = KEYS[1], KEYS[2]
local NAMES = {'closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled'}

CLOCK_FUNCTION

-- ft, nt, cd: the caller's failure threshold, success threshold and cooldown, used when the
-- circuit has no rules yet and then stored, unless keep_rules_unset (a manual action: an
-- operator's tool must not become the "first writer" of an application's rules).
-- Returns nil for a circuit without state unless `create` (see UNKNOWN in lua.py).
local function load(known_gen, now, ft, nt, cd, keep_rules_unset, create)
  local v = redis.call('HMGET', H, 'st', 'g', 'f', 's', 'oa', 'pu', 'ps', 'cft', 'cst', 'ccd')
  local c
  if not v[1] then
    if not create then return nil end
    redis.call('HSET', H, 'st', 0, 'g', known_gen, 'f', 0, 's', 0, 'oa', 0, 'pu', 0,
               'ps', 0, 'ca', now)
    c = {st = 0, g = known_gen, f = 0, s = 0, oa = 0, pu = 0, ps = 0}
  else
    c = {st = tonumber(v[1]), g = tonumber(v[2]), f = tonumber(v[3]), s = tonumber(v[4]),
         oa = tonumber(v[5]), pu = tonumber(v[6]), ps = tonumber(v[7])}
  end
  if v[8] and v[9] and v[10] then
    c.ft, c.nt, c.cd = tonumber(v[8]), tonumber(v[9]), tonumber(v[10])
  else
    c.ft, c.nt, c.cd = ft, nt, cd
    if not keep_rules_unset then
      redis.call('HSET', H, 'cft', ft, 'cst', nt, 'ccd', cd)
    end
  end
  return c
end

-- Moves the circuit to state `to`: bumps the generation (so outcomes of calls admitted
-- before are ignored), resets counters and appends the event. Returns the previous state.
local function move(c, to, reason, now, actor, host, pid)
  local from, failures, successes = c.st, c.f, c.s
  -- the reply of a transition carries the counts that caused it (for the event record)
  c.ef, c.es = failures, successes
  c.st = to
  c.g = c.g + 1
  c.pu = 0
  if to == 1 or to == 3 then
    c.oa = now
    c.s = 0
  elseif to == 2 then
    c.f = 0
    c.s = 0
  else
    c.f = 0
    c.s = 0
    c.oa = 0
  end
  redis.call('HSET', H, 'st', c.st, 'g', c.g, 'f', c.f, 's', c.s, 'oa', c.oa, 'pu', 0,
             'ps', c.ps, 'ca', now)
  redis.call('LPUSH', EV, cjson.encode({generation = c.g, from_state = NAMES[from + 1],
    to_state = NAMES[to + 1], reason = reason, failure_count = failures,
    success_count = successes, actor = actor, host = host, pid = tonumber(pid),
    occurred_at_ms = now}))
  redis.call('LTRIM', EV, 0, EVENTS_KEPT_LAST)
  return from
end

-- No state in Redis: the caller restores the circuit (SEED) and asks again.
local function unknown(gen)
  return 'UNKNOWN_CODE,0,' .. gen .. ',0,0,0,0,-1,0,'
end

local function reply(code, c, now, from, reason)
  local open_until = 0
  if c.st == 1 then open_until = c.oa + c.cd end
  local f, s = c.f, c.s
  if from >= 0 then f, s = c.ef, c.es end
  -- one bulk string instead of a 10-element array: far cheaper for the client to parse
  return table.concat({code, c.st, c.g, f, s, open_until, now, from, c.ps, reason}, ',')
end
""".replace("EVENTS_KEPT_LAST", str(EVENTS_KEPT - 1)).replace("UNKNOWN_CODE", str(UNKNOWN_CODE))

# May I call? ARGV: cooldown_ms, probe_lease_ms, known_gen, host, pid, failure_threshold,
# success_threshold.
# Performs OPEN -> HALF_OPEN when the cooldown is over, and hands out the single probe lease.
_ACQUIRE = (
    _PRELUDE
    + """
local lease = tonumber(ARGV[2])
local now = now_ms()
local c = load(tonumber(ARGV[3]), now, tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[1]))
if not c then return unknown(ARGV[3]) end
local code, from, reason = 1, -1, ''
if c.st == 1 then
  if now < c.oa + c.cd then
    code = 0
  else
    reason = 'cooldown elapsed'
    from = move(c, 2, reason, now, '', ARGV[4], ARGV[5])
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
"""
)

# Record an outcome. ARGV: generation, outcome (0 failure, 1 success, 2 ignored), probe_seq,
# failure_threshold, success_threshold, cooldown_ms, host, pid.
_RECORD = (
    """
-- Hot path first, before any setup: a success in CLOSED with no failures changes nothing,
-- needs no clock, and answers with a constant-shaped reply the client caches.
if ARGV[2] == '1' then
  local h = redis.call('HMGET', KEYS[1], 'st', 'g', 'f')
  if h[1] == '0' and h[2] == ARGV[1] and h[3] == '0' then
    return '1,0,' .. h[2] .. ',0,0,0,0,-1,0,'
  end
end
"""
    + _PRELUDE
    + """
local gen, outcome, probe = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local c = load(gen, now, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
if not c then return unknown(ARGV[1]) end
local code, from, reason = 0, -1, ''
if c.g == gen then
  if c.st == 0 then
    code = 1
    if outcome == 0 then
      c.f = c.f + 1
      if c.f >= c.ft then
        reason = c.f .. ' consecutive failures'
        from = move(c, 1, reason, now, '', ARGV[7], ARGV[8])
      else
        redis.call('HSET', H, 'f', c.f)
      end
    elseif outcome == 1 and c.f > 0 then
      c.f = 0
      redis.call('HSET', H, 'f', 0)
    end
  elseif c.st == 2 and probe == c.ps then
    code = 1
    if outcome == 0 then
      reason = 'probe failed'
      from = move(c, 1, reason, now, '', ARGV[7], ARGV[8])
    elseif outcome == 1 then
      c.s = c.s + 1
      if c.s >= c.nt then
        reason = c.s .. ' probe successes'
        from = move(c, 0, reason, now, '', ARGV[7], ARGV[8])
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
return reply(code, c, now, from, reason)
"""
)

# Manual action. ARGV: target state, reason, actor, host, pid, known_gen, cooldown_ms,
# failure_threshold, success_threshold.
_CONTROL = (
    _PRELUDE
    + """
local known = tonumber(ARGV[6])
local now = now_ms()
local c = load(known, now, tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[7]), true, true)
if c.g < known then c.g = known end
local from = move(c, tonumber(ARGV[1]), ARGV[2], now, ARGV[3], ARGV[4], ARGV[5])
return reply(1, c, now, from, ARGV[2])
"""
)

# Re-create a circuit that has no state (the caller got UNKNOWN). ARGV: state, generation,
# opened_at_ms (0: now, for a restored OPEN/FORCED_OPEN). Writes only if the state is still
# missing, so processes restoring at once agree on one state. Returns 1 if it wrote, else 0.
# The rules are left to the next decision ("first writer wins", as for any new circuit).
_SEED = """
local H = KEYS[1]
CLOCK_FUNCTION
if redis.call('HEXISTS', H, 'st') == 1 then return 0 end
local now = now_ms()
local st, oa = tonumber(ARGV[1]), tonumber(ARGV[3])
if st ~= 1 and st ~= 3 then oa = 0 elseif oa == 0 then oa = now end
redis.call('HSET', H, 'st', st, 'g', ARGV[2], 'f', 0, 's', 0, 'oa', oa, 'pu', 0, 'ps', 0, 'ca', now)
return 1
"""

# Replace the stored rules (``guard breaker configure``). ARGV: failure_threshold,
# success_threshold, cooldown_ms. Returns the previous rules ('' when there were none). The
# state is untouched: an OPEN circuit's cooldown is measured with the new value from now on.
_CONFIGURE = """
local old = redis.call('HMGET', KEYS[1], 'cft', 'cst', 'ccd')
-- A circuit configured before its first call gets its state fields from its first decision
-- (with the generation that caller knows), as any new circuit does.
redis.call('HSET', KEYS[1], 'cft', ARGV[1], 'cst', ARGV[2], 'ccd', ARGV[3])
if not old[1] then return '' end
return table.concat(old, ',')
"""

# A circuit's hash and the clock of the node that holds it, in one round trip (works on Redis
# Cluster, where a bare TIME would go to any node). Reply: {seconds, microseconds, HGETALL}.
READ = """
local t = redis.call('TIME')
return {t[1], t[2], redis.call('HGETALL', KEYS[1])}
"""

# Redis TIME in ms, the clock every decision uses.
REDIS_CLOCK = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""


def scripts(clock: str = REDIS_CLOCK) -> tuple[str, str, str, str]:
    """The ACQUIRE, RECORD, CONTROL and SEED scripts. ``clock`` defines ``now_ms()``; production
    always uses Redis ``TIME``. The differential test (tests/breaker) substitutes a clock it
    can step, so that the same decision code can be compared with the memory store's."""
    return tuple(  # type: ignore[return-value]
        source.replace("CLOCK_FUNCTION", clock) for source in (_ACQUIRE, _RECORD, _CONTROL, _SEED)
    )


ACQUIRE, RECORD, CONTROL, SEED = scripts()
CONFIGURE = _CONFIGURE
