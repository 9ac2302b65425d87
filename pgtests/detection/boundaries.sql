-- The edges that other fixtures never reach: every threshold and window of the detection rules
-- at its exact boundary (now() is fixed inside this transaction, so a row can sit exactly on it),
-- calls whose created_at and updated_at differ, the field next to the checked ones, the
-- adopted-database rows (another company's appointment) the defensive conditions exist for, and
-- the invariant CHECKs on their own, without the normalising triggers. Bad rows are written as a
-- legacy load would: triggers off, refusing constraints dropped.
BEGIN;
SELECT plan(19);

INSERT INTO companies (id, name) VALUES
(1, 'A'), (2, 'B'), (3, 'C'), (4, 'D'), (5, 'E'), (6, 'F'), (7, 'G'), (8, 'H');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments DROP CONSTRAINT guard_appointments_call_company_fkey;
SET LOCAL session_replication_role = replica;

INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    appointment_made, appointment_link_status, booking_failed, created_at, updated_at
) VALUES
-- booked_without_appointment (grace period 30 s, measured from the call's last write):
-- 101: a 20-minute conversation that claimed its booking 10 s ago: still in its grace period
(101, 1, 'c101', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', FALSE, now() - interval '20 min', now() - interval '10 s'),
-- 102: claimed exactly 30 s ago (not yet over); 103: 30 s and a millisecond ago (over)
(102, 1, 'c102', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', FALSE, now() - interval '20 min', now() - interval '30 s'),
(103, 1, 'c103', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', FALSE, now() - interval '20 min', now() - interval '30.001 s'),
-- 104: outcome appointment_booked without the made flag
(104, 1, 'c104', 'inbound', 'unlinked', 'appointment_booked', FALSE, NULL, FALSE, now() - interval '20 min', now() - interval '20 min'),
-- 105: its only appointment is cancelled; 106: the only appointment on it is another company's
(105, 1, 'c105', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', FALSE, now() - interval '20 min', now() - interval '20 min'),
(106, 1, 'c106', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', FALSE, now() - interval '20 min', now() - interval '20 min'),
-- flags_contradict_appointments: 110 booked but still marked failed; 111 booked but not linked;
-- 112 not booked, its only appointment soft-deleted (consistent). Two hours old: no failure window.
(110, 1, 'c110', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked', TRUE, now() - interval '2 hours', now() - interval '2 hours'),
(111, 1, 'c111', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'unlinked', FALSE, now() - interval '2 hours', now() - interval '2 hours'),
(112, 1, 'c112', 'inbound', 'unlinked', 'information_only', FALSE, NULL, FALSE, now() - interval '2 hours', now() - interval '2 hours'),
-- recent_booking_failure (window 60 min, start included): 130 only flagged booking_failed;
-- 131 failed exactly 60 min ago
(130, 1, 'c130', 'inbound', 'unlinked', 'information_only', FALSE, NULL, TRUE, now() - interval '10 min', now() - interval '10 min'),
(131, 1, 'c131', 'inbound', 'unlinked', 'creation_failed', FALSE, NULL, TRUE, now() - interval '60 min', now() - interval '60 min');

INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, status, deleted_at, created_at) VALUES
(105, 1, 105, 'retell_webhook', 'bk105', 'cancelled', NULL, now() - interval '20 min'),
(106, 2, 106, 'retell_webhook', 'bk106', 'scheduled', NULL, now() - interval '20 min'),
(110, 1, 110, 'retell_webhook', 'bk110', 'scheduled', NULL, now() - interval '2 hours'),
(111, 1, 111, 'retell_webhook', 'bk111', 'scheduled', NULL, now() - interval '2 hours'),
(112, 1, 112, 'retell_webhook', 'bk112', 'scheduled', now() - interval '1 hour', now() - interval '2 hours'),
-- orphaned_voice_appointment (grace 30 s): 120 exactly at the end of it; 121 cancelled
(120, 1, NULL, 'retell_webhook', 'bk120', 'scheduled', NULL, now() - interval '30 s'),
(121, 1, NULL, 'retell_webhook', 'bk121', 'cancelled', NULL, now() - interval '20 min');
-- 110 and 111 carry their link time, so that each offends by its one flag alone
UPDATE calls SET appointment_linked_at = created_at
WHERE id IN (110, 111);

-- booking_failure_anomaly (factor 3.0, at least 5 failures, baseline weeks 1 to 4):
-- company 3: exactly 5 failures of 5 calls now, no history: an anomaly (the minimum counts);
-- company 4: 6 of 10 now, 2 of 10 a week ago: exactly 3.0 times the usual rate, not above it;
-- company 5: 5 of 5 now, 1 of 10 a week ago: an anomaly (the recent window is not its own baseline);
-- company 6: 5 of 5 now, 10 of 10 four weeks ago: usual, not an anomaly.
INSERT INTO calls (company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at, updated_at)
SELECT
    s.company_id,
    'anomaly-' || s.company_id || '-' || s.weeks_ago || '-' || g,
    'inbound',
    'unlinked',
    CASE WHEN g <= s.failures THEN 'creation_failed' ELSE 'information_only' END,
    g <= s.failures,
    now() - make_interval(days => 7 * s.weeks_ago) - interval '30 min',
    now() - make_interval(days => 7 * s.weeks_ago) - interval '30 min'
FROM (VALUES (3, 0, 5, 5), (4, 0, 10, 6), (4, 1, 10, 2), (5, 0, 5, 5), (5, 1, 10, 1), (6, 0, 5, 5), (6, 4, 10, 10))
    AS s (company_id, weeks_ago, calls, failures)
CROSS JOIN LATERAL generate_series(1, s.calls) AS g;

-- A call queued behind an open circuit (its last attempt queued) is neither a call nor a failure
-- of the rate: company 7, 6 failed calls of 6 now, 270 queued after an earlier failed attempt:
-- 5 of 5, exactly the minimum, an anomaly; company 8, 6 of 6, 276 and 278 queued, 277 queued
-- and then failed (a failure): 4 of 4, under the minimum, no anomaly.
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, session_outcome, booking_failed, created_at, updated_at)
SELECT
    g,
    CASE WHEN g < 276 THEN 7 ELSE 8 END,
    'queued-' || g,
    'inbound',
    'unlinked',
    'creation_failed',
    TRUE,
    now() - interval '30 min',
    now() - interval '30 min'
FROM generate_series(270, 281) AS g;
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, state, created_at, finished_at)
VALUES
(7, 270, 1, 'q-270-a', 'failed', now() - interval '30 min', now() - interval '29 min'),
(7, 270, 1, 'q-270-b', 'queued', now() - interval '28 min', now() - interval '28 min'),
(8, 276, 1, 'q-276', 'queued', now() - interval '30 min', now() - interval '30 min'),
(8, 277, 1, 'q-277-a', 'queued', now() - interval '30 min', now() - interval '30 min'),
(8, 277, 1, 'q-277-b', 'failed', now() - interval '20 min', now() - interval '19 min'),
(8, 278, 1, 'q-278', 'queued', now() - interval '30 min', now() - interval '30 min');

-- booking_outcome_unknown (timeout 120 s): 140 calling exactly 120 s (not yet), 141 a millisecond more
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at, updated_at) VALUES
(140, 2, 'c140', 'inbound', 'unlinked', now() - interval '2 min', now() - interval '2 min'),
(141, 2, 'c141', 'inbound', 'unlinked', now() - interval '2 min', now() - interval '2 min');
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at) VALUES
(2, 140, 1, 'at-timeout', now() - interval '120 s'),
(2, 141, 1, 'past-timeout', now() - interval '120.001 s');
SET LOCAL session_replication_role = origin;

SELECT set_eq(
    'SELECT entity_id FROM guard.check_booked_without_appointment',
    ARRAY[103, 104, 105, 106]::bigint[],
    'booked_without_appointment: the grace period runs from the last write and ends after exactly 30 s; '
    'the outcome alone claims; a cancelled or another company''s appointment does not count'
);
SELECT set_eq(
    'SELECT entity_id FROM guard.check_flags_contradict_appointments',
    ARRAY[110, 111]::bigint[],
    'flags_contradict_appointments: still failed, or not linked; a soft-deleted appointment is no appointment'
);
SELECT set_eq(
    'SELECT entity_id FROM guard.check_orphaned_voice_appointment',
    ARRAY[]::bigint[],
    'orphaned_voice_appointment: not exactly at the end of its grace period, not when cancelled'
);
SELECT set_eq(
    'SELECT entity_id FROM guard.check_recent_booking_failure WHERE company_id = 1',
    ARRAY[130, 131]::bigint[],
    'recent_booking_failure: booking_failed alone is a failure; the window''s start is inside it'
);
SELECT set_eq(
    'SELECT company_id FROM guard.check_booking_failure_anomaly',
    ARRAY[3, 5, 7]::bigint[],
    'booking_failure_anomaly: exactly the minimum failures count; exactly factor times usual does not; '
    'the recent window is not in its baseline; the fourth week is; a call whose last attempt was '
    'queued behind an open circuit is no failure, one queued and then failed is'
);
SELECT set_eq(
    $$SELECT b.idempotency_key FROM guard.check_booking_outcome_unknown AS v
      INNER JOIN guard.booking_attempts AS b ON v.entity_id = b.id$$,
    ARRAY['past-timeout'],
    'booking_outcome_unknown: an attempt calling for exactly the timeout is not yet unknown'
);
SELECT set_eq(
    $$SELECT b.idempotency_key FROM guard.unsettled_booking_attempts(10) AS b$$,
    ARRAY['past-timeout'],
    'unsettled_booking_attempts: the same boundary as the detection rule'
);

-- Direction: the CHECK admits exactly two values; plausible third ones are refused.
SELECT throws_ok(
    $$INSERT INTO calls (company_id, retell_call_id, direction) VALUES (1, 'd1', 'internal')$$,
    '23514', NULL, 'direction internal is refused'
);
SELECT throws_ok(
    $$INSERT INTO calls (company_id, retell_call_id, direction) VALUES (1, 'd2', 'unknown')$$,
    '23514', NULL, 'direction unknown is refused'
);

-- Link confidence is a percentage: 100 is the top, 101 is not.
INSERT INTO customers (id, company_id, name) VALUES (1, 1, 'Ann'), (2, 1, 'Bob');
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_id, customer_link_confidence)
VALUES (150, 1, 'c150', 'inbound', 1, 100);
SELECT throws_ok(
    $$INSERT INTO calls (company_id, retell_call_id, direction, customer_id, customer_link_confidence)
      VALUES (1, 'c151', 'inbound', 1, 101)$$,
    '23514', NULL, 'link confidence 101 is refused, 100 is stored'
);
SELECT is(
    (
        SELECT customer_link_confidence FROM calls
        WHERE id = 150
    ), 100::numeric,
    'link confidence 100 is stored'
);

-- I2 without the normalising trigger (a bypassing writer): the CHECK alone refuses a linked
-- customer whose link lacks its confidence or its time.
SET LOCAL session_replication_role = replica;
SELECT throws_ok(
    $$INSERT INTO calls (company_id, retell_call_id, direction, customer_id, customer_link_status,
        customer_linked_at, customer_link_method, customer_link_confidence)
      VALUES (1, 'c152', 'inbound', 1, 'linked', now(), 'phone', NULL)$$,
    '23514', NULL, 'I2: a linked customer without link confidence is refused by the CHECK itself'
);
SELECT throws_ok(
    $$INSERT INTO calls (company_id, retell_call_id, direction, customer_id, customer_link_status,
        customer_linked_at, customer_link_method, customer_link_confidence)
      VALUES (1, 'c153', 'inbound', 1, 'linked', NULL, 'phone', 90)$$,
    '23514', NULL, 'I2: a linked customer without link time is refused by the CHECK itself'
);
SET LOCAL session_replication_role = origin;

-- I2: a caller whose number is withheld under any of its names is anonymous, not unlinked.
INSERT INTO calls (id, company_id, retell_call_id, direction, from_number) VALUES
(160, 1, 'c160', 'inbound', ' Private '),
(161, 1, 'c161', 'inbound', 'RESTRICTED'),
(162, 1, 'c162', 'inbound', 'unknown'),
(163, 1, 'c163', 'inbound', '+49 30 163');
SELECT results_eq(
    'SELECT customer_link_status FROM calls WHERE id BETWEEN 160 AND 163 ORDER BY id',
    ARRAY['anonymous', 'anonymous', 'anonymous', 'unlinked'],
    'I2: private, restricted and unknown numbers are anonymous; a real number is unlinked'
);

-- I2: a call linked yesterday and relinked to another customer now gets a new link time (the
-- link time of the other fixtures is now(), the same as a relink's, which hides this).
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_id, customer_linked_at)
VALUES (164, 1, 'c164', 'inbound', 1, now() - interval '1 day');
UPDATE calls SET customer_id = 2
WHERE id = 164;
SELECT is(
    (
        SELECT customer_linked_at FROM calls
        WHERE id = 164
    ), now(),
    'I2: relinking to another customer restarts the link time'
);

-- I3 with fixtures whose fields differ from the defaults: a call marked failed that then gets
-- its appointment is no longer failed; a second appointment keeps the first link time.
INSERT INTO calls (id, company_id, retell_call_id, direction, session_outcome, booking_failed)
VALUES (170, 1, 'c170', 'inbound', 'creation_failed', TRUE);
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id) VALUES (1, 170, 'retell_webhook', 'bk170');
SELECT results_eq(
    'SELECT appointment_made, session_outcome, booking_failed FROM calls WHERE id = 170',
    $$VALUES (TRUE, 'appointment_booked', FALSE)$$,
    'I3: an appointment for a call marked failed books it and clears the failure'
);
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES (171, 1, 'c171', 'inbound');
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id) VALUES (1, 171, 'retell_webhook', 'bk171a');
SET LOCAL session_replication_role = replica;
UPDATE calls SET appointment_linked_at = now() - interval '1 day'
WHERE id = 171;
SET LOCAL session_replication_role = origin;
INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id) VALUES (1, 171, 'retell_webhook', 'bk171b');
SELECT is(
    (
        SELECT appointment_linked_at FROM calls
        WHERE id = 171
    ), now() - interval '1 day',
    'I3: a second appointment keeps the time the call was first linked'
);

-- I3: purging an already soft-deleted appointment changes nothing on its call, here a call
-- whose claim of a booking (written as a legacy load would, the triggers off) is not this
-- appointment's to judge: only the loss of an active appointment re-derives a call's flags.
INSERT INTO calls (id, company_id, retell_call_id, direction) VALUES (172, 1, 'c172', 'inbound');
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, deleted_at)
VALUES (172, 1, 172, 'retell_webhook', 'bk172-old', now() - interval '1 day');
SET LOCAL session_replication_role = replica;
UPDATE calls SET appointment_made = TRUE, session_outcome = 'appointment_booked', booking_id = 'bk172'
WHERE id = 172;
SET LOCAL session_replication_role = origin;
DELETE FROM appointments
WHERE id = 172;
SELECT results_eq(
    'SELECT appointment_made, session_outcome FROM calls WHERE id = 172',
    $$VALUES (TRUE, 'appointment_booked')$$,
    'I3: deleting a soft-deleted appointment leaves the call''s claim alone'
);

-- I5: an appointment without a company is refused even when it has no call, also on an adopted
-- schema whose company_id column is nullable (the composite foreign key alone would not check it).
ALTER TABLE appointments ALTER COLUMN company_id DROP NOT NULL;
SELECT throws_ok(
    $$INSERT INTO appointments (company_id, call_id, source) VALUES (NULL, NULL, 'manual')$$,
    '23514', NULL, 'I5: an appointment without a company is refused'
);

SELECT * FROM finish();
ROLLBACK;
