-- guard.schedule_jobs in a database that has a schema named cron but not the pg_cron extension
-- (pg_cron lives in another database of the cluster, or the schema is another tool's): scheduling
-- is skipped with the message that says how to run the jobs, not an error about cron.schedule.
BEGIN;
SELECT plan(2);

SELECT is_empty(
    $$SELECT FROM pg_extension WHERE extname = 'pg_cron'$$,
    'pg_cron is not installed in this database'
);
CREATE SCHEMA cron;
SELECT is(
    guard.schedule_jobs(),
    'pg_cron is not installed in this database: schedule skipped; '
    || 'run `guard jobs run` to run the jobs from outside',
    'a schema named cron without the extension is no pg_cron'
);

SELECT * FROM finish();
ROLLBACK;
