-- Settings measured by the benchmarks (bench/triggers.py, bench/detect.py):
-- - JIT off for the functions whose large set-based statements it compiled for longer than they
--   ran: a 10 000-row delete of appointments took 1.7 s with JIT and 0.3 s without.
-- - calls at fillfactor 50: the derived booking flags are then updated in place (HOT), without a
--   new entry in every index. It applies to pages written from now on; no rewrite, a brief
--   SHARE UPDATE EXCLUSIVE lock (also on an adopted table: see docs/dba.md).

ALTER FUNCTION guard.refresh_call_flags(bigint[], bigint[], text, boolean) SET jit = off;

ALTER FUNCTION guard.reconcile(boolean) SET jit = off;

ALTER FUNCTION guard.reconcile_call_batch(bigint, bigint) SET jit = off;

ALTER FUNCTION guard.run_detection(timestamptz, bigint) SET jit = off;

ALTER TABLE public.calls SET (fillfactor = 50);
