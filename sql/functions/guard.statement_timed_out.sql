-- Whether the statement running now has outlived its statement_timeout: how a function that
-- caught query_canceled tells the timer from a cancel somebody asked for (pg_cancel_backend, a
-- client's cancel), which it passes on. PostgreSQL arms the timer once per top-level statement
-- and it fires once: after it, the rest of the statement runs with no timer (detection runs the
-- checks left as skipped, guard.run_job records the run). statement_timestamp() is when the
-- statement's message arrived, a moment before the timer was armed; nine tenths of the timeout
-- leave room for the extended protocol, whose Execute message comes after the Parse that armed it.
CREATE OR REPLACE FUNCTION guard.statement_timed_out()
RETURNS boolean
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog
RETURN
current_setting('statement_timeout') <> '0'
AND clock_timestamp() - statement_timestamp()
>= 0.9 * current_setting('statement_timeout')::interval;
