"""Lua scripts run by Redis: one script, one round trip, per breaker decision.

Each circuit is one hash ``guard:breaker:{KEY}`` plus a capped list
``guard:breaker:{KEY}:events`` of the last transitions. The hash's fields, and the bounds of the
values each may hold, are defined once in ``codec.py`` (which also decodes the hash for Python);
the scripts spell the same names, and ``tests/breaker/test_breaker_codec.py`` checks that they do.

The failure-rate window lives in the same hash (so it is evicted, and restored, with the
state): totals, an epoch and one field ``w<i>`` per slot. A count slot holds
``epoch * 4 + code`` (code: 1 failed, 2 slow, 3 both, 0 neither); a time bucket holds
``epoch:second:calls:failures:slow``. A slot counts only if it carries the current epoch (and, for
a bucket, a second still inside the window), so emptying the window is one epoch bump, never a
walk over its slots; recording a call changes O(1) fields (a time window also subtracts the
buckets whose second has left it, at most one per elapsed second).

Both names carry the same hash tag, so a script touching both runs on one Redis Cluster node.
Time always comes from Redis ``TIME`` (allowed in writing scripts since Redis 5 replicates
scripts by effects), so processes with skewed clocks agree on when a cooldown ends. Redis's own
clock may jump (a stepped clock, a failover to a node set differently): an OPEN circuit opened
"later" than now is repaired like a bad value (``load``), so that the cooldown it waits is never
longer than its configured one, measured from the decision that saw the jump; a reply's
open-until is bounded the same way.

A circuit without state in Redis (never used, or evicted by a Redis under ``maxmemory``) is
never silently created CLOSED by a decision: ``ACQUIRE`` and ``RECORD`` answer ``UNKNOWN``
(code 9) and write nothing, and the caller re-creates it with ``SEED`` (from the state
PostgreSQL recorded, or CLOSED with the generation it last knew for a new circuit) and asks
again. A missing hash costs nothing on the hot path: the scripts read the hash anyway. Only a
manual action (``CONTROL``) creates a missing circuit itself, since it sets the state.

The rules are stored by the first script that finds none (the caller's values, "first writer
wins") or by ``guard breaker configure``; from then on every decision uses the stored values,
whatever the calling process was configured with, so processes configured differently still
agree on one circuit. The success hot path of ``RECORD`` needs no rule beyond "no window": a
circuit with a window records every call, in the same single script.

Every decision script takes the caller's rules as one argument (fewer arguments are cheaper for
Redis to parse on every call), eleven numbers joined by commas: failure threshold, success
threshold, cooldown ms, window type, size, minimum calls, failure rate %, slow-call ms,
slow-call rate %, cooldown growth % and maximum cooldown ms (``RULES_ARGC``; ``CONFIGURE`` takes
them as eleven arguments).

The growing cooldown (opt-in, ``ccg`` > 0): a failed probe stores in ``oc`` the cooldown of the
next opening, the present one times ``ccg`` %, at most ``ccm``; closing sets it back to 0 (the
plain cooldown). Statistics: ``lf`` is set by every counted failure, ``cl`` by every move to
CLOSED from another state.
"""

from __future__ import annotations

from guard.breaker.state import MAX_COOLDOWN_GROWTH, MAX_COUNT_WINDOW, MAX_TIME_WINDOW_SECONDS
from guard.breaker.stored import (
    MAX_COUNT,
    MAX_GENERATION,
    MAX_MINIMUM_CALLS,
    MAX_SLOW_CALL_MS,
    MAX_TIME_MS,
)

EVENTS_KEPT = 50

# Reply code of ACQUIRE/RECORD for a circuit that has no state in Redis (see the docstring).
UNKNOWN_CODE = 9

# The caller's rules: the eleven values of ``SharedRules`` as the scripts take them.
RULES_ARGC = 11


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

-- A stored value is used only if it is an integer within [lo, hi]; anything else (missing,
-- empty, text, NaN, inf, a fraction, out of range) is nil (stored.py has the same checks).
local function int_in(v, lo, hi)
  local n = tonumber(v)
  if n and n >= lo and n <= hi and n == math.floor(n) then return n end
  return nil
end

-- A stored value as a repair report quotes it: short, printable ASCII only.
local function shown(v)
  if not v then return 'missing' end
  v = tostring(v)
  if #v > 24 then v = string.sub(v, 1, 24) .. '...' end
  return "'" .. (string.gsub(v, '[^%w%.%+%-]', '?')) .. "'"
end

-- mine: the caller's rules (one argument, eleven numbers joined by commas, in the order of
-- cft .. ccm), used when the circuit has no rules yet and then stored, unless keep_rules_unset
-- (a manual action: an operator's tool must not become the "first writer" of an application's
-- rules).
-- Returns nil for a circuit without state (see UNKNOWN in lua.py).
-- Every field is checked (int_in): what is not a value the breaker could have written is
-- repaired to a safe value and named in c.bad ('g=..., f=...'; nil when the hash is sound), and
-- the calling script records the repair as a transition. A state that does not exist is
-- removed, and the circuit is then missing: the caller restores PostgreSQL's record (SEED) and
-- asks again, and that decision records the repair ('rp' keeps what the state was until then).
-- A bad generation becomes the caller's, bad counts and times 0, bad rules are dropped (the
-- caller's apply), a bad window is emptied, an OPEN circuit opened after `now` (Redis's clock
-- went back) opens again now.
-- The window's fields are read only for a circuit that has one (each field read costs).
local function load(known_gen, now, mine, keep_rules_unset)
  local v = redis.call('HMGET', H, 'st', 'g', 'f', 's', 'oa', 'pu', 'ps', 'cft', 'cst', 'ccd',
                       'cwt', 'ccg', 'ccm', 'oc', 'lf', 'cl', 'rp')
  if not v[1] then return nil end
  if not int_in(v[1], 0, 5) then
    local note = 'st=' .. shown(v[1])
    redis.call('HDEL', H, 'st')
    redis.call('HSET', H, 'rp', note)
    return nil
  end
  local bad = {}
  if v[17] then
    bad[1] = string.sub((string.gsub(v[17], "[^%w%.%+%-%?'=]", '?')), 1, 40)
    redis.call('HDEL', H, 'rp')
  end
  -- missing: what a field absent from the hash means (nil: it must be there)
  local function checked(i, name, lo, hi, default, missing)
    local n = int_in(v[i] or missing, lo, hi)
    if n then return n end
    bad[#bad + 1] = name .. '=' .. shown(v[i])
    return default
  end
  local known = int_in(known_gen, 0, MAX_GENERATION) or 0
  local c = {st = int_in(v[1], 0, 5), g = checked(2, 'g', 0, MAX_GENERATION, known),
             f = checked(3, 'f', 0, MAX_COUNT, 0), s = checked(4, 's', 0, MAX_COUNT, 0),
             oa = checked(5, 'oa', 0, MAX_TIME_MS, 0), pu = checked(6, 'pu', 0, MAX_TIME_MS, 0),
             ps = checked(7, 'ps', 0, MAX_GENERATION, 0),
             -- written by this version only: a hash of an earlier one lacks them
             oc = checked(14, 'oc', 0, MAX_COUNT, 0, 0),
             lf = checked(15, 'lf', 0, MAX_TIME_MS, 0, 0),
             cl = checked(16, 'cl', 0, MAX_TIME_MS, 0, 0)}
  if c.st == 1 and now > 0 and c.oa > now then
    bad[#bad + 1] = 'oa=' .. c.oa .. ' is ' .. (c.oa - now) .. ' ms ahead of the clock'
  end
  local r, w = nil, nil
  if v[8] or v[9] or v[10] then
    -- the stored rules (stored by an earlier version, they lack the window's and the growth's:
    -- neither)
    r = {int_in(v[8], 1, MAX_COUNT), int_in(v[9], 1, MAX_COUNT), int_in(v[10], 1, MAX_COUNT),
         int_in(v[11] or 0, 0, 2), 0, 0, 0, 0, 0, int_in(v[12] or 0, 0, MAX_GROWTH_PERCENT),
         int_in(v[13] or 0, 0, MAX_COUNT)}
    local sound = r[1] and r[2] and r[3] and r[4] and r[10] and r[11]
    if sound and r[4] ~= 0 then
      w = redis.call('HMGET', H, 'cws', 'cwm', 'cfr', 'csd', 'csr', 'we', 'wn', 'wf', 'wsl', 'wp')
      r[5] = int_in(w[1], 1, r[4] == 1 and MAX_COUNT_WINDOW or MAX_TIME_WINDOW)
      r[6] = int_in(w[2], 1, MAX_MINIMUM_CALLS)
      r[7] = int_in(w[3], 0, 100)
      r[8] = int_in(w[4], 0, MAX_SLOW_CALL_MS)
      r[9] = int_in(w[5], 0, 100)
      sound = r[5] and r[6] and r[7] and r[8] and r[9]
    end
    if not sound then
      local names = {'cft', 'cst', 'ccd', 'cwt', 'cws', 'cwm', 'cfr', 'csd', 'csr', 'ccg', 'ccm'}
      local got = redis.call('HMGET', H, unpack(names))
      local wrong = {}
      for i = 1, 11 do
        if i <= 4 or i >= 10 or (r[4] and r[4] ~= 0) then
          if not r[i] then wrong[#wrong + 1] = names[i] .. '=' .. shown(got[i]) end
        end
      end
      if #wrong == 0 then wrong[1] = 'rules' end
      bad[#bad + 1] = table.concat(wrong, ', ')
      redis.call('HDEL', H, unpack(names))
      r, w = nil, nil
    end
  end
  if not r then
    r = {}
    for n in string.gmatch(mine, '[^,]+') do r[#r + 1] = tonumber(n) end
    r[10], r[11] = r[10] or 0, r[11] or 0
    if not keep_rules_unset then
      redis.call('HSET', H, 'cft', r[1], 'cst', r[2], 'ccd', r[3], 'cwt', r[4], 'cws', r[5],
                 'cwm', r[6], 'cfr', r[7], 'csd', r[8], 'csr', r[9], 'ccg', r[10], 'ccm', r[11])
    end
    if r[4] ~= 0 then
      w = redis.call('HMGET', H, 'cws', 'cwm', 'cfr', 'csd', 'csr', 'we', 'wn', 'wf', 'wsl', 'wp')
    end
  end
  c.ft, c.nt, c.cd, c.wt, c.ws, c.wm, c.fr, c.sd, c.sr, c.cg, c.cm = unpack(r, 1, 11)
  c.we, c.wn, c.wf, c.wsl, c.wp = 0, 0, 0, 0, 0
  if w then
    local we, wn = int_in(w[6] or 0, 0, MAX_GENERATION), int_in(w[7] or 0, 0, MAX_COUNT)
    local wf, wsl = int_in(w[8] or 0, 0, MAX_COUNT), int_in(w[9] or 0, 0, MAX_COUNT)
    local wp = int_in(w[10] or 0, 0, MAX_TIME_MS)
    if we and wn and wf and wsl and wp and wf <= wn and wsl <= wn
        and (c.wt ~= 1 or wn <= c.ws) then
      c.we, c.wn, c.wf, c.wsl, c.wp = we, wn, wf, wsl, wp
    else
      -- an empty window of a new epoch (move() starts one too)
      bad[#bad + 1] = 'window we=' .. shown(w[6]) .. ' wn=' .. shown(w[7]) .. ' wf=' ..
        shown(w[8]) .. ' wsl=' .. shown(w[9]) .. ' wp=' .. shown(w[10])
      c.we = (we or 0) + 1
      redis.call('HSET', H, 'we', c.we, 'wn', 0, 'wf', 0, 'wsl', 0, 'wp', 0)
    end
  end
  if #bad > 0 then c.bad = table.concat(bad, ', ') end
  return c
end

-- Empties the failure-rate window: a new epoch, so no slot counts any more.
local function reset_window(c)
  c.we, c.wn, c.wf, c.wsl, c.wp = c.we + 1, 0, 0, 0, 0
  redis.call('HSET', H, 'we', c.we, 'wn', 0, 'wf', 0, 'wsl', 0, 'wp', 0)
end

-- The cooldown of the present opening (SharedRules.open_cooldown_ms in state.py).
local function cooldown(c)
  if c.cg == 0 or c.oc == 0 then return c.cd end
  return math.max(c.cd, math.min(c.oc, c.cm))
end

-- The cooldown after one more failed probe, 0 without growth (SharedRules.grown_cooldown_ms).
local function grown(c)
  if c.cg == 0 then return 0 end
  return math.max(c.cd, math.min(math.floor(cooldown(c) * c.cg / 100), c.cm))
end

-- Moves the circuit to state `to`: bumps the generation (so outcomes of calls admitted
-- before are ignored), resets counters and appends the event. Returns the previous state.
local function move(c, to, reason, now, actor, host, pid)
  local from, failures, successes = c.st, c.f, c.s
  -- a failed probe grows the cooldown; closing (or an operator's close) forgets it
  if to == 1 and from == 2 then
    c.oc = grown(c)
  elseif to == 0 or to == 4 or to == 5 then
    c.oc = 0
  end
  if to == 0 and from ~= 0 then c.cl = now end
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
             'ps', c.ps, 'ca', now, 'oc', c.oc, 'lf', c.lf, 'cl', c.cl)
  redis.call('LPUSH', EV, cjson.encode({generation = c.g, from_state = NAMES[from + 1],
    to_state = NAMES[to + 1], reason = reason, failure_count = failures,
    success_count = successes, actor = actor, host = host, pid = tonumber(pid),
    occurred_at_ms = now}))
  redis.call('LTRIM', EV, 0, EVENTS_KEPT_LAST)
  if c.wt ~= 0 then reset_window(c) end
  return from
end

-- Records one call of CLOSED in the window (failed, slow: booleans) and returns the reason to
-- open the circuit, or '' (rates are judged only once the window holds the minimum calls).
local function record_in_window(c, failed, slow, now)
  local n = c.ws
  local code = (failed and 1 or 0) + (slow and 2 or 0)
  local field
  if c.wt == 1 then
    local i = c.wp % n
    field = 'w' .. i
    local old = tonumber(redis.call('HGET', H, field))
    if old and math.floor(old / 4) == c.we then
      local was = old % 4
      c.wn = c.wn - 1
      c.wf = c.wf - was % 2
      c.wsl = c.wsl - math.floor(was / 2)
    end
    c.wp = (i + 1) % n
    c.wn, c.wf, c.wsl = c.wn + 1, c.wf + code % 2, c.wsl + math.floor(code / 2)
    redis.call('HSET', H, field, c.we * 4 + code, 'wn', c.wn, 'wf', c.wf, 'wsl', c.wsl,
               'wp', c.wp)
  else
    local sec = math.floor(now / 1000)
    local head = c.wp
    local bn, bf, bw = 0, 0, 0
    if head == 0 or sec - head >= n then
      -- nothing recorded yet, or everything recorded has left the window
      c.wn, c.wf, c.wsl = 0, 0, 0
      head = sec
    elseif sec > head then
      -- the seconds head+1 .. sec enter the window; the buckets they reuse leave it
      local fields = {}
      for t = head + 1, sec do fields[#fields + 1] = 'w' .. (t % n) end
      local got = redis.call('HMGET', H, unpack(fields))
      for j = 1, #fields do
        if got[j] then
          local e, bs, cn, cf, cw = string.match(got[j], '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
          if tonumber(e) == c.we and tonumber(bs) == head + j - n then
            c.wn = c.wn - tonumber(cn)
            c.wf = c.wf - tonumber(cf)
            c.wsl = c.wsl - tonumber(cw)
          end
        end
      end
      head = sec
    else
      -- the newest second (or a clock that went back): add to its bucket
      local got = redis.call('HGET', H, 'w' .. (head % n))
      if got then
        local e, bs, cn, cf, cw = string.match(got, '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
        if tonumber(e) == c.we and tonumber(bs) == head then
          bn, bf, bw = tonumber(cn), tonumber(cf), tonumber(cw)
        end
      end
    end
    c.wp = head
    field = 'w' .. (head % n)
    bn, bf, bw = bn + 1, bf + code % 2, bw + math.floor(code / 2)
    c.wn, c.wf, c.wsl = c.wn + 1, c.wf + code % 2, c.wsl + math.floor(code / 2)
    redis.call('HSET', H, field, table.concat({c.we, head, bn, bf, bw}, ':'), 'wn', c.wn,
               'wf', c.wf, 'wsl', c.wsl, 'wp', c.wp)
  end
  local minimum = c.wm
  if c.wt == 1 and minimum > n then minimum = n end
  if c.wn < minimum then return '' end
  if c.fr > 0 and c.wf * 100 >= c.fr * c.wn then
    return c.wf .. ' of the last ' .. c.wn .. ' calls failed (' ..
      math.floor(c.wf * 100 / c.wn) .. '%)'
  end
  if c.sr > 0 and c.wsl * 100 >= c.sr * c.wn then
    return c.wsl .. ' of the last ' .. c.wn .. ' calls slower than ' .. c.sd .. ' ms (' ..
      math.floor(c.wsl * 100 / c.wn) .. '%)'
  end
  return ''
end

-- No state in Redis: the caller restores the circuit (SEED) and asks again.
local function unknown(gen)
  return 'UNKNOWN_CODE,0,' .. gen .. ',0,0,0,0,-1,0,'
end

-- The reply of a counted outcome that leaves the circuit CLOSED without failures: constant per
-- generation and clock-free, like the hot path's, so the client parses it once.
local function quiet(c)
  return '1,0,' .. c.g .. ',0,0,0,0,-1,0,'
end

local function reply(code, c, now, from, reason)
  local open_until = 0
  if c.st == 1 then open_until = math.min(c.oa, now) + cooldown(c) end
  local f, s = c.f, c.s
  if from >= 0 then f, s = c.ef, c.es end
  -- one bulk string instead of a 10-element array: far cheaper for the client to parse
  return table.concat({code, c.st, c.g, f, s, open_until, now, from, c.ps, reason}, ',')
end
"""
# The bounds of a stored value (stored.py), written into every script. Longer names first: a
# name that is the prefix of another must not replace part of it.
_CONSTANTS = {
    "EVENTS_KEPT_LAST": EVENTS_KEPT - 1,
    "UNKNOWN_CODE": UNKNOWN_CODE,
    "MAX_GENERATION": MAX_GENERATION,
    "MAX_COUNT_WINDOW": MAX_COUNT_WINDOW,
    "MAX_TIME_WINDOW": MAX_TIME_WINDOW_SECONDS,
    "MAX_COUNT": MAX_COUNT,
    "MAX_TIME_MS": MAX_TIME_MS,
    "MAX_MINIMUM_CALLS": MAX_MINIMUM_CALLS,
    "MAX_SLOW_CALL_MS": MAX_SLOW_CALL_MS,
    "MAX_GROWTH_PERCENT": MAX_COOLDOWN_GROWTH * 100,
}


def _with_constants(source: str) -> str:
    for name, value in _CONSTANTS.items():
        source = source.replace(name, str(value))
    return source


# May I call? ARGV: probe_lease_ms, known_gen, host, pid, the caller's rules.
# Performs OPEN -> HALF_OPEN when the cooldown is over, and hands out the single probe lease.
_ACQUIRE = (
    _PRELUDE
    + """
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
"""
)

# Record an outcome. ARGV: generation, outcome (0 failure, 1 success, 2 ignored), probe_seq,
# host, pid, the caller's rules, duration_ms (how long the call took, for the slow-call rule;
# last, so that the client packs the rest of the command once per generation).
_RECORD = (
    """
-- Hot path first, before any setup: a success in CLOSED with no failures and no window changes
-- nothing, needs no clock, and answers with a constant-shaped reply the client caches.
if ARGV[2] == '1' then
  local h = redis.call('HMGET', KEYS[1], 'st', 'g', 'f', 'cwt')
  if h[1] == '0' and h[2] == ARGV[1] and h[3] == '0' and (not h[4] or h[4] == '0') then
    return '1,0,' .. h[2] .. ',0,0,0,0,-1,0,'
  end
end
"""
    + _PRELUDE
    + """
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
"""
)

# Manual action. ARGV: target state, reason, actor, host, pid, known_gen, the caller's rules
# (never stored, see ``load``). The state it moves from is read in this very script, so the
# event records what the circuit really was. A circuit without state answers UNKNOWN like a
# decision (the caller restores it with SEED, from what PostgreSQL recorded, and asks again):
# a reset of a circuit Redis lost must move from the state it had, not from a new "closed".
_CONTROL = (
    _PRELUDE
    + """
local known = int_in(ARGV[6], 0, MAX_GENERATION) or 0
local now = now_ms()
local c = load(ARGV[6], now, ARGV[7], true)
if not c then return unknown(ARGV[6]) end
if c.g < known then c.g = known end
local reason = ARGV[2]
if c.bad then reason = reason .. ' (repaired: ' .. c.bad .. ')' end
local from = move(c, tonumber(ARGV[1]), reason, now, ARGV[3], ARGV[4], ARGV[5])
return reply(1, c, now, from, reason)
"""
)

# Re-create a circuit that has no state (the caller got UNKNOWN). ARGV: state, generation,
# opened_at_ms (0: now, for a restored OPEN/FORCED_OPEN), and a note: when the state restored
# had to be repaired (stored.check_record), the note says what, and an event is recorded.
# Writes only if the state is still missing, so processes restoring at once agree on one state.
# Returns 1 if it wrote, else 0. The arguments are checked like a stored hash: a state that
# does not exist becomes OPEN, a generation out of range 0, an opened-at in the future now.
# The rules are left to the next decision ("first writer wins", as for any new circuit).
_SEED = (
    """
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
""".replace("MAX_GENERATION", str(MAX_GENERATION))
    .replace("MAX_TIME_MS", str(MAX_TIME_MS))
    .replace("EVENTS_KEPT_LAST", str(EVENTS_KEPT - 1))
)

# Replace the stored rules (``guard breaker configure``). ARGV: the rules (RULES_ARGC), then
# known_gen, reason, actor, host, pid. The state is untouched (an OPEN circuit's cooldown is
# measured with the new value from now on), but the change is one of the circuit's: it bumps the
# generation and is recorded as an event from the state to itself, so that PostgreSQL's history
# holds every change an operator made. New window rules (type, size, minimum, rates, slow
# duration) start an empty window: the calls recorded under the old ones are not comparable.
# A circuit without state answers UNKNOWN (the caller restores it with SEED and asks again).
# Reply: {the previous rules ('' when there were none; the window and growth fields as 0 when
# they were stored without them), the reply of a transition}.
_CONFIGURE = (
    _PRELUDE
    + """
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
"""
)

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


def scripts(clock: str = REDIS_CLOCK) -> tuple[str, str, str, str, str]:
    """The ACQUIRE, RECORD, CONTROL, SEED and CONFIGURE scripts. ``clock`` defines
    ``now_ms()``; production always uses Redis ``TIME``. The differential test (tests/breaker)
    substitutes a clock it can step, so that the same decision code can be compared with the
    memory store's."""
    return tuple(  # type: ignore[return-value]
        _with_constants(source).replace("CLOCK_FUNCTION", clock)
        for source in (_ACQUIRE, _RECORD, _CONTROL, _SEED, _CONFIGURE)
    )


ACQUIRE, RECORD, CONTROL, SEED, CONFIGURE = scripts()
