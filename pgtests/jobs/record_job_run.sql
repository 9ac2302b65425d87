-- guard.record_job_run, as `guard jobs run` calls it for a run that could not record itself: a
-- run whose start the runner could not learn (started NULL) started when it is recorded (0 ms),
-- so its heartbeat row and its job_failed alert still say when; a run with a known start keeps
-- it. A failure opens the job's job_failed alert, the next success resolves it.
BEGIN;
SELECT plan(7);

SELECT is(
    guard.record_job_run('reconcile', NULL, 'failed', 'canceling statement', '57014'),
    0::double precision,
    'a failed run with no known start lasted 0 ms'
);
SELECT results_eq(
    $$SELECT started_at = finished_at, status, error, sqlstate, duration_ms FROM guard.job_runs
      WHERE job_name = 'reconcile'$$,
    $$VALUES (TRUE, 'failed'::text, 'canceling statement'::text, '57014'::text, 0::double precision)$$,
    'its heartbeat row starts when it finished'
);
SELECT results_eq(
    $$SELECT a.status, (a.details ->> 'started_at')::timestamptz = r.started_at
      FROM guard.alerts AS a, guard.job_runs AS r
      WHERE a.fingerprint = 'job_failed:job:reconcile' AND r.job_name = 'reconcile'$$,
    $$VALUES ('open'::text, TRUE)$$,
    'and its job_failed alert is open, with that start'
);

SELECT cmp_ok(
    guard.record_job_run('reconcile', now() - interval '5 seconds', 'succeeded', NULL, NULL),
    '>=',
    5000::double precision,
    'a run with a known start lasted from then'
);
SELECT results_eq(
    $$SELECT started_at, status FROM guard.job_runs
      WHERE job_name = 'reconcile' ORDER BY id DESC LIMIT 1$$,
    $$VALUES (now() - interval '5 seconds', 'succeeded'::text)$$,
    'its row keeps that start'
);
SELECT results_eq(
    $$SELECT status FROM guard.alerts WHERE fingerprint = 'job_failed:job:reconcile'$$,
    $$VALUES ('resolved'::text)$$,
    'the success resolves the job''s job_failed alert'
);
SELECT is(
    guard.record_job_run('reconcile', NULL, 'succeeded', NULL, NULL),
    0::double precision,
    'a successful run with no known start lasted 0 ms too'
);

SELECT * FROM finish();
ROLLBACK;
