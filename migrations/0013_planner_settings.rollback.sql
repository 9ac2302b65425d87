ALTER TABLE public.calls RESET (fillfactor);

ALTER FUNCTION guard.run_detection(timestamptz, bigint) RESET jit;

ALTER FUNCTION guard.reconcile_call_batch(bigint, bigint) RESET jit;

ALTER FUNCTION guard.reconcile(boolean) RESET jit;

ALTER FUNCTION guard.refresh_call_flags(bigint[], bigint[], text, boolean) RESET jit;
