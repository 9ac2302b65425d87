-- Record an outcome. ARGV: generation, outcome (0 failure, 1 success, 2 ignored), probe_seq,
-- host, pid, the caller's rules, duration_ms (how long the call took, for the slow-call rule;
-- last, so that the client packs the rest of the command once per generation).
-- (This part runs before prelude.lua; record.lua follows it.)
-- Hot path first, before any setup: a success in CLOSED with no failures and no window changes
-- nothing, needs no clock, and answers with a constant-shaped reply the client caches.
if ARGV[2] == '1' then
  local h = redis.call('HMGET', KEYS[1], 'st', 'g', 'f', 'cwt')
  if h[1] == '0' and h[2] == ARGV[1] and h[3] == '0' and (not h[4] or h[4] == '0') then
    return '1,0,' .. h[2] .. ',0,0,0,0,-1,0,'
  end
end
