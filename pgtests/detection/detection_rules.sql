-- Each detection rule finds its bad row and leaves the legitimate look-alike alone. Bad rows are
-- written as a legacy load or a bypassing writer would: triggers off (replica role), and the
-- constraints that would refuse them dropped inside this transaction.
BEGIN;
SELECT plan(20);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
SELECT pgtap_setup.legacy_load();

INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    appointment_made, appointment_link_status, appointment_linked_at, booking_id, booking_failed,
    created_at, updated_at
) VALUES
-- 1: consistent booking; 2: appointment exists, flags say not made
(1, 1, 'c1', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', now(), 'bk1', FALSE, now() - interval '20 min', now() - interval '20 min'),
(2, 1, 'c2', 'inbound', 'unlinked', 'appointment_booked', FALSE, NULL, NULL, 'bk2', FALSE, now() - interval '20 min', now() - interval '20 min'),
-- 3: phantom booking after the grace period; 4: a booking claimed 10 s ago (grace period, 30 s)
(3, 1, 'c3', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', now(), 'bk3', FALSE, now() - interval '20 min', now() - interval '20 min'),
(4, 1, 'c4', 'inbound', 'unlinked', 'appointment_booked', FALSE, NULL, NULL, 'bk4', FALSE, now() - interval '10 s', now() - interval '10 s'),
-- 5: no direction; 6: a recent booking failure; 7: a failure two hours ago (outside the window)
(5, 1, 'c5', NULL, 'unlinked', 'information_only', FALSE, NULL, NULL, NULL, FALSE, now() - interval '20 min', now() - interval '20 min'),
(6, 1, 'c6', 'inbound', 'unlinked', 'creation_failed', FALSE, NULL, NULL, NULL, TRUE, now() - interval '20 min', now() - interval '20 min'),
(7, 1, 'c7', 'inbound', 'unlinked', 'creation_failed', FALSE, NULL, NULL, NULL, TRUE, now() - interval '2 hours', now() - interval '2 hours'),
-- 8: a call of company 2 that company 1's appointment is linked to
(8, 2, 'c8', 'inbound', 'unlinked', 'information_only', FALSE, NULL, NULL, NULL, FALSE, now() - interval '20 min', now() - interval '20 min');

INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at) VALUES
(1, 1, 1, 'retell_webhook', 'bk1', now() - interval '20 min'),
(2, 1, 2, 'retell_webhook', 'bk2', now() - interval '20 min'),
-- 3: orphaned voice-agent appointment; 4: a manual appointment without a call (legitimate);
-- 5: an orphan written 10 s ago (grace period, 30 s)
(3, 1, NULL, 'retell_webhook', 'bk-orphan', now() - interval '20 min'),
(4, 1, NULL, 'manual', NULL, now() - interval '20 min'),
(5, 1, NULL, 'retell_webhook', 'bk-fresh', now() - interval '10 s'),
-- 6: cross-tenant link
(6, 1, 8, 'retell_webhook', 'bk-x', now() - interval '20 min');
SET LOCAL session_replication_role = origin;

-- Each check's view finds its one bad row.
SELECT set_eq(format('SELECT entity_id FROM guard.%I', 'check_' || v.check_id), ARRAY[v.entity_id::bigint], v.description)
FROM (
    VALUES
    (1, 'flags_contradict_appointments', 2, 'flags_contradict_appointments: the call whose flags deny its appointment, not the consistent one'),
    (2, 'booked_without_appointment', 3, 'booked_without_appointment: the phantom, not the booking inside its grace period'),
    (3, 'call_without_direction', 5, 'call_without_direction'),
    (4, 'orphaned_voice_appointment', 3, 'orphaned_voice_appointment: not the manual one, not the one inside its grace period'),
    (5, 'recent_booking_failure', 6, 'recent_booking_failure: only inside the failure window'),
    (6, 'cross_tenant_link', 6, 'cross_tenant_link')
) AS v (n, check_id, entity_id, description)
ORDER BY v.n;
SELECT is_empty(
    'SELECT * FROM guard.check_booking_failure_anomaly',
    'booking_failure_anomaly: one failure is no anomaly'
);

-- A burst of failures against a quiet history is an anomaly.
INSERT INTO calls (company_id, retell_call_id, direction, session_outcome, booking_failed, created_at)
SELECT
    1,
    'burst' || g,
    'inbound',
    'creation_failed',
    TRUE,
    now() - interval '5 min'
FROM generate_series(1, 8) AS g;
INSERT INTO calls (company_id, retell_call_id, direction, session_outcome, created_at)
SELECT
    1,
    'history' || g,
    'inbound',
    'information_only',
    now() - make_interval(days => 7 * (g % 4 + 1), mins => 10)
FROM generate_series(1, 40) AS g;
SELECT results_eq(
    $$SELECT entity_id, (detail ->> 'recent_failures')::int FROM guard.check_booking_failure_anomaly$$,
    $$VALUES (1::bigint, 9)$$,
    'booking_failure_anomaly: 9 failures now against none in the same hour of the last 4 weeks'
);

-- detect(): one alert per finding, de-duplicated by fingerprint.
SELECT results_eq(
    $$SELECT check_id, offending, opened FROM guard.detect() ORDER BY check_id$$,
    $$VALUES
        ('booked_without_appointment', 1, 1), ('booking_failure_anomaly', 1, 1),
        ('booking_outcome_unknown', 0, 0), ('booking_volume_drop', 0, 0), ('bookings_stopped', 0, 0),
        ('call_volume_drop', 0, 0), ('call_without_direction', 1, 1), ('calls_stopped', 0, 0),
        ('cross_tenant_link', 1, 1), ('customer_double_booked', 0, 0), ('double_booked_call', 0, 0),
        ('flags_contradict_appointments', 1, 1),
        ('orphaned_voice_appointment', 1, 1), ('recent_booking_failure', 9, 9), ('unknown_value', 0, 0)$$,
    'detect opens one alert per offending row'
);
SELECT results_eq(
    $$SELECT sum(opened)::int, sum(repeated)::int FROM guard.detect()$$,
    $$VALUES (0, 15)$$,
    'a second pass opens nothing: every repeat bumps its alert'
);
SELECT results_eq(
    $$SELECT occurrences FROM guard.alerts WHERE fingerprint = 'call_without_direction:call:5'$$,
    ARRAY[1],
    'the repeat is counted on the same row, not written: its last sighting is within its refresh period'
);

-- Fixing a row resolves its alert, even outside the window: open alerts are re-checked.
UPDATE calls SET direction = 'inbound'
WHERE id = 5;
UPDATE calls SET created_at = now() - interval '3 days'
WHERE id = 2;
UPDATE calls SET appointment_made = TRUE
WHERE id = 2;
-- The rest of call 2's flags are corrected when the write's transaction commits.
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SELECT results_eq(
    $$SELECT check_id, resolved FROM guard.detect()
      WHERE check_id IN ('call_without_direction', 'flags_contradict_appointments') ORDER BY 1$$,
    $$VALUES ('call_without_direction', 1), ('flags_contradict_appointments', 1)$$,
    'fixed rows resolve their alerts, also one older than the window'
);
SELECT results_eq(
    $$SELECT status, resolution, resolved_at IS NOT NULL FROM guard.alerts
      WHERE fingerprint = 'call_without_direction:call:5'$$,
    $$VALUES ('resolved', 'fixed', TRUE)$$,
    'the resolved alert keeps its history'
);

-- A repeat after a silence longer than the throttle window starts a new alert: silent means not
-- seen by the alert itself nor by a pass of its check that ran through (guard.detection_runs).
UPDATE guard.alerts SET last_seen_at = now() - interval '1 hour'
WHERE fingerprint = 'cross_tenant_link:appointment:6';
UPDATE guard.detection_runs SET pass_started_at = now() - interval '1 hour'
WHERE check_id = 'cross_tenant_link';
SELECT results_eq(
    $$SELECT opened FROM guard.detect() WHERE check_id = 'cross_tenant_link'$$, ARRAY[1],
    'after the throttle window a repeat opens a new alert'
);
SELECT results_eq(
    $$SELECT status, resolution FROM guard.alerts WHERE fingerprint = 'cross_tenant_link:appointment:6'
      ORDER BY id$$,
    $$VALUES ('resolved', 'superseded'), ('open', NULL)$$,
    'and closes the old one as superseded'
);
SELECT results_eq(
    $$SELECT resolved_at = now() - interval '1 hour', last_seen_at = now() - interval '1 hour'
      FROM guard.alerts WHERE fingerprint = 'cross_tenant_link:appointment:6' AND status = 'resolved'$$,
    $$VALUES (TRUE, TRUE)$$,
    'the superseded alert is closed as of its last sighting; the repeat is not counted on it'
);
-- A closed alert of a fingerprint that offends again (call 3's phantom, fixed once and back) is
-- history: a pass bumps or supersedes only the open one.
INSERT INTO guard.alerts (
    fingerprint, check_id, company_id, entity_type, entity_id, severity, message, status,
    first_seen_at, last_seen_at, resolved_at, resolution
) VALUES (
    'booked_without_appointment:call:3', 'booked_without_appointment', 1, 'call', 3, 'critical',
    'an earlier phantom', 'resolved', now() - interval '2 days', now() - interval '2 days',
    now() - interval '1 day', 'fixed'
);
SELECT guard.detect();
SELECT results_eq(
    $$SELECT resolution, occurrences, resolved_at = now() - interval '1 day' FROM guard.alerts
      WHERE fingerprint = 'booked_without_appointment:call:3' AND status = 'resolved'$$,
    $$VALUES ('fixed'::text, 1, TRUE)$$,
    'a pass leaves the closed alerts of a fingerprint that offends again as they were'
);
-- Exactly one throttle window (alert_throttle_seconds: 300) after the last sighting: a repeat.
UPDATE guard.alerts SET last_seen_at = now() - interval '300 seconds'
WHERE fingerprint = 'booked_without_appointment:call:3' AND status = 'open';
SELECT results_eq(
    $$SELECT opened, repeated FROM guard.detect() WHERE check_id = 'booked_without_appointment'$$,
    $$VALUES (0, 1)$$,
    'a repeat exactly one throttle window after the last sighting bumps its alert'
);

-- check_call: every rule for one call, now.
SELECT results_eq(
    $$SELECT check_id, offending FROM guard.check_call(3) WHERE offending > 0$$,
    $$VALUES ('booked_without_appointment', 1)$$,
    'check_call finds the phantom booking of call 3'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.alerts
        WHERE check_id = 'recent_booking_failure' AND status = 'open'
    ),
    9,
    'check_call of one call leaves the open alerts of other calls alone'
);

SELECT * FROM finish();
ROLLBACK;
