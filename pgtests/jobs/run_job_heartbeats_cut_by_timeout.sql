-- guard.run_job when the statement timeout fires in its check of every job's missed runs (after
-- the job ran and its run was recorded): the cut is not the job's failure, so the run stands and
-- run_job answers as it would have; the check runs again with the next job. The check is made
-- slow by replacing guard.check_job_heartbeats inside this transaction.
BEGIN;
SELECT plan(2);

DELETE FROM guard.job_runs;
CREATE OR REPLACE FUNCTION guard.check_job_heartbeats() RETURNS integer
LANGUAGE sql AS $$ SELECT 0 FROM pg_sleep(2) $$;

SET LOCAL statement_timeout = '500ms';
SELECT matches(
    guard.run_job('review_sweep'), '^review_sweep: succeeded in \d+ ms$',
    'a statement timeout in the missed-run check leaves the job succeeded'
);
RESET statement_timeout;
SELECT results_eq(
    $$SELECT job_name, status FROM guard.job_runs$$,
    $$VALUES ('review_sweep'::text, 'succeeded'::text)$$,
    'and its run recorded'
);

SELECT * FROM finish();
ROLLBACK;
