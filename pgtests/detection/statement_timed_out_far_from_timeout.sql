-- guard.statement_timed_out tells the statement timer from a cancel somebody asked for: a
-- statement far from its timeout has not timed out (a cancel then is passed on, not taken for
-- the timer), nor has one without a timeout. (Statements cut by their timer:
-- tests/jobs/test_jobs_independent.py.)
BEGIN;
SELECT plan(2);

SET LOCAL statement_timeout = '10min';
SELECT is(guard.statement_timed_out(), FALSE, 'a statement far from its timeout has not timed out');
SET LOCAL statement_timeout = 0;
SELECT is(guard.statement_timed_out(), FALSE, 'a statement without a timeout has not timed out');
SELECT * FROM finish();
ROLLBACK;
