-- More edges a sample of generated mutants found untested (docs/testing.md, "Mutation testing"):
-- guard.fold_metric_totals counts a booking that finished after its horizon (an hour ago) only
-- at a later fold, never twice; guard.apply_retention keeps a validation sample measured exactly
-- at the fold's watermark, which no fold has counted yet; guard.run_checks, when an own check
-- left out of check_call for being over its budget runs within it again, resolves that check's
-- over-budget alert and no other open alert.
BEGIN;
SELECT plan(7);

INSERT INTO companies (id, name) VALUES (741, 'A');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (7401, 741, 'c7401'), (7402, 741, 'c7402');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, starts_at)
VALUES (7401, 741, 7401, 'u7401', '2032-01-10 10:00Z'), (7402, 741, 7402, 'u7402', NULL);

-- Two bookings: one finished two hours ago (before the horizon), one 30 minutes ago (after it).
UPDATE guard.metric_watermark SET folded_before = '-infinity';
INSERT INTO guard.booking_attempts (
    company_id, call_id, service_id, idempotency_key, state, created_at, finished_at,
    appointment_id, booking_uid
) VALUES
(741, 7401, 1, 'fold-before', 'booked', now() - interval '2 hours', now() - interval '2 hours', 7401, 'u7401'),
(741, 7402, 1, 'fold-after', 'booked', now() - interval '30 min', now() - interval '30 min', 7402, 'u7402');
SELECT cmp_ok(guard.fold_metric_totals(), '>=', 1::bigint, 'fold_metric_totals folds what it may');
SELECT results_eq(
    $$SELECT total FROM guard.metric_totals WHERE counter = 'bookings' AND label = 'booked'$$,
    $$VALUES (1::bigint)$$,
    'a booking finished after the horizon is not counted yet: the next fold counts it, once'
);

-- Validation samples past their retention: one a microsecond before the watermark the fold
-- leaves (an hour ago, counted), one exactly at it (not counted yet).
UPDATE guard.settings SET value = '0'
WHERE key = 'retention_validation_metrics_days';
INSERT INTO guard.validation_metrics (ok, latency_ms, measured_at) VALUES
(TRUE, 1, now() - interval '1 hour' - interval '1 microsecond'),
(TRUE, 2, now() - interval '1 hour');
SELECT results_eq(
    $$SELECT deleted FROM guard.apply_retention() WHERE target = 'guard.validation_metrics'$$,
    $$VALUES (1::bigint)$$,
    'apply_retention deletes the sample the fold counted'
);
SELECT results_eq(
    $$SELECT latency_ms FROM guard.validation_metrics$$,
    $$VALUES (2::double precision)$$,
    'and keeps the one measured exactly at the watermark, which no fold has counted'
);
SELECT is(
    (SELECT folded_before FROM guard.metric_watermark),
    now() - interval '1 hour',
    'the watermark is the fold''s horizon, an hour ago'
);

-- Two own checks over check_call's budget: quick's alert is older than the time it is left out
-- for, so check_call runs it again; slow's is fresh, so it stays left out.
INSERT INTO guard.rules (id, severity, description, remedy)
VALUES ('own_rule74', 'low', 'A rule of the DBA''s own.', 'report');
SELECT pgtap_setup.appointment_check('quick74', 'own_rule74', 'a.starts_at IS NULL AND a.company_id = 741');
CREATE VIEW guard.check_slow74 WITH (security_invoker = TRUE) AS
SELECT * FROM guard.check_quick74;
SELECT guard.register_check('quick74', 'own_rule74', 'check_quick74', 'low', 'x');
SELECT guard.register_check('slow74', 'own_rule74', 'check_slow74', 'low', 'x');
UPDATE guard.settings SET value = '60000'
WHERE key = 'check_call_budget_ms';
SELECT guard.open_check_alert('check_over_budget', 'quick74', 'too slow', '{}');
SELECT guard.open_check_alert('check_over_budget', 'slow74', 'too slow', '{}');
UPDATE guard.alerts SET last_seen_at = now() - interval '1 day'
WHERE fingerprint = 'check_over_budget:check:quick74';
-- both read by a pass within the budget (check_call runs no own check before one has)
INSERT INTO guard.detection_runs (pass_started_at, check_id, rule_id, duration_ms, offending, opened, repeated, resolved)
VALUES (now(), 'quick74', 'own_rule74', 1, 0, 0, 0, 0), (now(), 'slow74', 'own_rule74', 1, 0, 0, 0, 0);
SELECT results_eq(
    $$SELECT check_id, status FROM guard.run_checks(NULL, 7402) WHERE check_id IN ('quick74', 'slow74')
      ORDER BY 1$$,
    $$VALUES ('quick74'::text, 'ok'::text), ('slow74', 'skipped')$$,
    'check_call runs the own check whose time out is over and leaves out the other'
);
SELECT results_eq(
    $$SELECT fingerprint, status FROM guard.alerts WHERE check_id = 'check_over_budget' ORDER BY 1$$,
    $$VALUES ('check_over_budget:check:quick74'::text, 'resolved'::text),
             ('check_over_budget:check:slow74', 'open')$$,
    'within its budget again, its over-budget alert is resolved, and no other open alert'
);

SELECT * FROM finish();
ROLLBACK;
