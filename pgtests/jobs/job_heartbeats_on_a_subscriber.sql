-- guard.check_job_heartbeats on a logical subscriber of the booking tables: the jobs
-- guard.run_job skips there (detect, sweep, reconcile) never succeed by design and are not
-- missed; every other job still is, and their alerts raised before the database became a
-- subscriber are resolved. The subscription is faked by replacing
-- guard.booking_subscription inside this transaction.
BEGIN;
SELECT plan(3);

-- Every job overdue: configured 60 days ago (written past the trigger that stamps updated_at),
-- never succeeded.
SET LOCAL session_replication_role = replica;
UPDATE guard.jobs SET updated_at = now() - interval '60 days';
SET LOCAL session_replication_role = origin;
DELETE FROM guard.job_runs;

CREATE OR REPLACE FUNCTION guard.booking_subscription() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT 'booking_tables'::text $$;
SELECT guard.check_job_heartbeats();
SELECT is(
    (
        SELECT array_agg(j.name ORDER BY j.name) FROM guard.jobs AS j
        WHERE EXISTS (
            SELECT FROM guard.alerts AS a
            WHERE a.fingerprint = 'job_missed:job:' || j.name AND a.status = 'open'
        )
    ),
    (
        SELECT array_agg(j.name ORDER BY j.name) FROM guard.jobs AS j
        WHERE j.enabled AND j.name NOT IN ('detect', 'sweep', 'reconcile')
    ),
    'check_job_heartbeats on a subscriber: detect, sweep and reconcile are not missed, the others are'
);

CREATE OR REPLACE FUNCTION guard.booking_subscription() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT NULL::text $$;
SELECT guard.check_job_heartbeats();
SELECT is(
    (
        SELECT array_agg(j.name ORDER BY j.name) FROM guard.jobs AS j
        WHERE
            j.name IN ('detect', 'sweep', 'reconcile')
            AND EXISTS (
                SELECT FROM guard.alerts AS a
                WHERE a.fingerprint = 'job_missed:job:' || j.name AND a.status = 'open'
            )
    ),
    ARRAY['detect', 'reconcile', 'sweep']::text[],
    'check_job_heartbeats elsewhere: the same three are missed'
);

-- a subscriber again: the three alerts raised meanwhile are resolved, the others stay open
CREATE OR REPLACE FUNCTION guard.booking_subscription() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT 'booking_tables'::text $$;
SELECT guard.check_job_heartbeats();
SELECT results_eq(
    $$SELECT a.fingerprint, a.status, a.resolution FROM guard.alerts AS a
      WHERE a.fingerprint IN ('job_missed:job:detect', 'job_missed:job:reconcile', 'job_missed:job:sweep')
      ORDER BY a.fingerprint$$,
    $$VALUES
        ('job_missed:job:detect', 'resolved', 'fixed'),
        ('job_missed:job:reconcile', 'resolved', 'fixed'),
        ('job_missed:job:sweep', 'resolved', 'fixed')$$,
    'check_job_heartbeats on a subscriber resolves the alerts of the jobs it skips there'
);

SELECT * FROM finish();
ROLLBACK;
