-- The functions every decision script (acquire, record, control, configure) begins with: the
-- circuit's hash is read and checked (load), moved (move) and answered (reply). Upper-case names
-- are the bounds of codec.py and the clock, written in by guard/breaker/redis_store.py.
local H, EV = KEYS[1], KEYS[2]
local NAMES = {'closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled'}

CLOCK_FUNCTION

-- A stored value is used only if it is an integer within [lo, hi]; anything else (missing,
-- empty, text, NaN, inf, a fraction, out of range) is nil (codec.py has the same checks).
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
-- Returns nil for a circuit without state (see UNKNOWN_CODE in redis_store.py).
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
