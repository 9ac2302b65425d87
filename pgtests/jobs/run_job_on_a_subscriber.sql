-- guard.run_job on a logical subscriber of the booking tables: each of the jobs that detect or
-- correct (detect, sweep, reconcile) is skipped, naming the subscription, and records no run;
-- every other job runs there. Off a subscriber the same three run. The subscription is faked by
-- replacing guard.booking_subscription inside this transaction (a real subscriber:
-- tests/ha/test_logical_subscriber.py, marked slow).
BEGIN;
SELECT plan(5);

DELETE FROM guard.job_runs;
CREATE OR REPLACE FUNCTION guard.booking_subscription() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT 'booking_tables'::text $$;

SELECT results_eq(
    $$SELECT guard.run_job(j.name) FROM (VALUES (1, 'detect'), (2, 'sweep'), (3, 'reconcile')) AS j (n, name)
      ORDER BY j.n$$,
    $$VALUES
        ('detect: skipped, this database subscribes to the booking tables (subscription'
         || ' booking_tables): detection runs on the publisher'),
        ('sweep: skipped, this database subscribes to the booking tables (subscription'
         || ' booking_tables): detection runs on the publisher'),
        ('reconcile: skipped, this database subscribes to the booking tables (subscription'
         || ' booking_tables): detection runs on the publisher')$$,
    'on a subscriber detect, sweep and reconcile are each skipped, naming the subscription'
);
SELECT is_empty(
    $$SELECT job_name FROM guard.job_runs$$,
    'and record no run'
);
SELECT matches(
    guard.run_job('review_sweep'), '^review_sweep: succeeded in \d+ ms$',
    'another job runs on a subscriber'
);

CREATE OR REPLACE FUNCTION guard.booking_subscription() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT NULL::text $$;
SELECT is(
    (
        SELECT array_agg(r.outcome ~ ('^' || r.name || ': (succeeded|failed)') ORDER BY r.name)
        FROM (
            SELECT
                j.name,
                guard.run_job(j.name) AS outcome
            FROM (VALUES ('detect'), ('sweep'), ('reconcile')) AS j (name)
        ) AS r
    ),
    ARRAY[TRUE, TRUE, TRUE],
    'off a subscriber the same three run'
);
SELECT is(
    (
        SELECT array_agg(DISTINCT job_name ORDER BY job_name) FROM guard.job_runs
        WHERE job_name IN ('detect', 'sweep', 'reconcile')
    ),
    ARRAY['detect', 'reconcile', 'sweep']::text[],
    'and record their runs'
);

SELECT * FROM finish();
ROLLBACK;
