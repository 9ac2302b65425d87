-- The other side of the boundaries pgtests/detection/boundaries.sql and edges/reconcile_review_journal_delivery.sql hold at their exact
-- value: a millisecond (or a microsecond) past each window, threshold and timeout, so that both
-- `<` and `<=` (and `>` and `>=`) of every such comparison are told apart. now() is fixed inside
-- this transaction, so a row can sit exactly on an edge or just beside it. Settings as shipped:
-- grace_period_seconds 30, failure_window_minutes 60, booking_attempt_timeout_seconds 120,
-- validation_recent_seconds 300.
BEGIN;
SELECT plan(13);

INSERT INTO companies (id, name) VALUES (611, 'edges');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;

-- check_orphaned_voice_appointment (grace 30 s): exactly 30 s is not yet orphaned, 30.001 s is.
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, status, created_at) VALUES
(6101, 611, NULL, 'retell_webhook', 'bk6101', 'scheduled', now() - interval '30 s'),
(6102, 611, NULL, 'retell_webhook', 'bk6102', 'scheduled', now() - interval '30.001 s'),
(6103, 611, NULL, ' Retell_Webhook ', 'bk6103', 'scheduled', now() - interval '1 hour'),
(6104, 611, NULL, 'manual', 'bk6104', 'scheduled', now() - interval '1 hour');
SELECT set_eq(
    'SELECT entity_id FROM guard.check_orphaned_voice_appointment WHERE company_id = 611',
    ARRAY[6102, 6103]::bigint[],
    'orphaned_voice_appointment: 30.001 s past its creation is orphaned, exactly 30 s not yet; '
    'the source is compared trimmed and case-folded; a manual appointment is no voice booking'
);

-- check_recent_booking_failure (window 60 min, its start included): by creation, exactly 60 min
-- ago is in, a millisecond more is out; by a failed attempt's end, the same.
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    booking_failed, created_at, updated_at
) VALUES
(6111, 611, 'c6111', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '60 min', now() - interval '60 min'),
(6112, 611, 'c6112', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '60 min 0.001 s', now() - interval '60 min 0.001 s'),
(6113, 611, 'c6113', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '3 hours', now() - interval '3 hours'),
(6114, 611, 'c6114', 'inbound', 'unlinked', 'creation_failed', TRUE, now() - interval '3 hours', now() - interval '3 hours');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, created_at, finished_at) VALUES
(611, 6113, 1, 'rbf-at-start', 'failed', now() - interval '3 hours', now() - interval '60 min'),
(611, 6114, 1, 'rbf-before-start', 'failed', now() - interval '3 hours', now() - interval '60 min 0.001 s');
SET LOCAL session_replication_role = origin;
SELECT set_eq(
    'SELECT entity_id FROM guard.check_recent_booking_failure WHERE company_id = 611',
    ARRAY[6111, 6113]::bigint[],
    'recent_booking_failure: created or failed exactly at the window''s start is in it, a '
    'millisecond earlier is not'
);

-- Booking journal (timeout 120 s): an attempt calling for 120.001 s no longer holds the call.
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES
(6120, 611, 'c6120', 'inbound'), (6121, 611, 'c6121', 'inbound'), (6122, 611, 'c6122', 'inbound'),
(6123, 611, 'c6123', 'inbound');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at) VALUES
(611, 6120, 7, 'past-timeout-begin', now() - interval '120.001 s'),
(611, 6121, 7, 'past-timeout-complete', now() - interval '120.001 s'),
(611, 6122, 7, 'at-timeout-complete', now() - interval '120 s');
SELECT isnt(
    (SELECT outcome FROM guard.begin_booking_attempt(6120, 7)), 'in_flight',
    'begin_booking_attempt: an attempt calling for a millisecond past the timeout is no longer in flight'
);
SELECT is(
    (SELECT outcome FROM guard.begin_booking_attempt(6123, 7)), 'started',
    'begin_booking_attempt: a call without attempts starts'
);
SELECT is(
    (SELECT outcome FROM guard.begin_booking_attempt(6123, 7)), 'in_flight',
    'begin_booking_attempt: an attempt begun now is in flight'
);
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at) VALUES
(6121, 611, 6121, 'retell_webhook', 'bk6121', now() - interval '300.001 s'),
(6122, 611, 6122, 'retell_webhook', 'bk6122', now() - interval '300 s');
SELECT is(
    guard.complete_booking_attempt('past-timeout-complete', 6121, 'bk6121'), 'recovered',
    'complete_booking_attempt: completed a millisecond past the timeout is recovered'
);
SELECT is(
    guard.complete_booking_attempt('at-timeout-complete', 6122, 'bk6122'), 'booked',
    'complete_booking_attempt: completed at exactly the timeout is booked'
);
-- validate_booking (validation_recent_seconds 300): 300.001 s old is no longer recent.
SELECT results_eq(
    $$SELECT ok, reason FROM guard.validate_booking(6121, 6121, 'bk6121')$$,
    $$VALUES (FALSE, 'appointment_not_recent')$$,
    'validate_booking: an appointment a millisecond older than validation_recent_seconds is not recent'
);
SELECT isnt(
    (SELECT reason FROM guard.validate_booking(6122, 6122, 'bk6122')), 'appointment_not_recent',
    'validate_booking: an appointment exactly validation_recent_seconds old is recent'
);

-- claim_deliveries: due a microsecond from now is not due yet; a claim that lasts until
-- exactly now still holds, one that ended a microsecond ago does not.
INSERT INTO guard.alerts (id, fingerprint, check_id, company_id, entity_type, entity_id, severity, message)
OVERRIDING SYSTEM VALUE
VALUES
(61101, 'edge2:1', 'booked_without_appointment', 611, 'call', 1, 'high', 'x'),
(61102, 'edge2:2', 'booked_without_appointment', 611, 'call', 2, 'high', 'x'),
(61103, 'edge2:3', 'booked_without_appointment', 611, 'call', 3, 'high', 'x'),
(61104, 'edge2:4', 'booked_without_appointment', 611, 'call', 4, 'high', 'x');
INSERT INTO guard.deliveries (kind, subject, channel, next_attempt_at, claimed_by, claimed_until) VALUES
('alert', 61101, 'edge2', now() + interval '1 microsecond', NULL, NULL),
('alert', 61102, 'edge2', now() - interval '1 minute', 'other', now()),
('alert', 61103, 'edge2', now() - interval '1 minute', 'other', now() - interval '1 microsecond'),
('alert', 61104, 'edge2', now(), NULL, NULL);
SELECT set_eq(
    $$SELECT subject FROM guard.claim_deliveries('alert', 'edge2', 'w', 100, 30)$$,
    ARRAY[61103, 61104]::bigint[],
    'claim_deliveries: due exactly now is due, a microsecond later not; a claim until '
    'exactly now still holds, one that ended a microsecond ago is taken over'
);

-- open_check_alert's quiet period: a repeat within it writes nothing; one whose open alert was
-- last seen exactly `quiet` ago bumps it.
SELECT guard.open_check_alert('check_failed', 'edge_check', 'first', '{}');
UPDATE guard.alerts SET last_seen_at = now() - interval '10 s'
WHERE fingerprint = 'check_failed:check:edge_check';
SELECT guard.open_check_alert('check_failed', 'edge_check', 'within', '{}', interval '10.001 s');
SELECT results_eq(
    $$SELECT occurrences, message FROM guard.alerts
      WHERE fingerprint = 'check_failed:check:edge_check'$$,
    $$VALUES (1, 'first')$$,
    'open_check_alert: a repeat within the quiet period writes nothing'
);
SELECT guard.open_check_alert('check_failed', 'edge_check', 'at the edge', '{}', interval '10 s');
SELECT results_eq(
    $$SELECT occurrences, message, last_seen_at = now() FROM guard.alerts
      WHERE fingerprint = 'check_failed:check:edge_check'$$,
    $$VALUES (2, 'at the edge', TRUE)$$,
    'open_check_alert: a repeat exactly the quiet period after the last one bumps the alert'
);
SELECT guard.open_check_alert('check_failed', 'edge_check', 'no quiet', '{}');
SELECT is(
    (
        SELECT occurrences FROM guard.alerts
        WHERE fingerprint = 'check_failed:check:edge_check'
    ),
    3,
    'open_check_alert: without a quiet period every repeat bumps'
);

SELECT * FROM finish();
ROLLBACK;
