-- guard.detection_runs: a windowed pass records one row per enabled check with what it returned;
-- check_call's one-call pass records nothing; guard.detection_passes gives one row per pass.
BEGIN;
SELECT plan(6);

INSERT INTO companies (id, name) VALUES (1, 'A');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome) VALUES
(1, 1, 'c1', 'Appointment_Booked'), (2, 1, 'c2', 'No_Booking');

CREATE TEMPORARY TABLE pass AS
SELECT * FROM guard.run_detection(now() - interval '1 hour', NULL);

SELECT set_eq(
    $$SELECT check_id, rule_id, offending, opened, repeated, resolved FROM guard.detection_runs$$,
    $$SELECT check_id, rule_id, offending, opened, repeated, resolved FROM pass$$,
    'one row per check of the pass, with what the pass returned'
);
SELECT is(
    (SELECT count(*)::int FROM guard.detection_runs),
    (
        SELECT count(*)::int FROM guard.checks
        WHERE enabled AND check_view IS NOT NULL
    ),
    'every enabled detection check is recorded'
);
SELECT ok(
    (
        SELECT
            count(DISTINCT pass_started_at) = 1 AND bool_and(duration_ms >= 0)
            AND bool_and(window_start IS NOT NULL) AND bool_and(run_by = current_user)
        FROM guard.detection_runs
    ),
    'the rows share the pass''s start, with the window, a duration and who ran it'
);

SELECT lives_ok($$SELECT * FROM guard.check_call(1)$$, 'check_call of one call');
SELECT is(
    (SELECT count(*)::int FROM guard.detection_runs),
    (SELECT count(*)::int FROM pass),
    'check_call records no run (it is on the application''s path)'
);

SELECT results_eq(
    $$SELECT checks, offending, opened, offending_by_check FROM guard.detection_passes$$,
    $$SELECT
        (SELECT count(*)::int FROM pass), 2, 2, '{"unknown_value": 2}'::jsonb$$,
    'detection_passes: one row per pass, with the totals and the offending rows per check'
);

SELECT * FROM finish();
ROLLBACK;
