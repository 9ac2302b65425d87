-- The sweep job (guard.sweep_checks): an update of an old row that writes an unknown value (the
-- issue's cancellation spelt 'canceled', days after the booking) is outside every detection
-- window; the sweep reads the whole view of the checks marked sweep, opens one alert (no
-- observed_at: when the row went bad is unknown), bumps it on the next sweep, and the next
-- detection pass resolves it once the value is fixed. Checks not marked sweep are not read.
BEGIN;
SELECT plan(9);

INSERT INTO companies (id, name) VALUES (1, 'A');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    appointment_made, appointment_link_status, created_at, updated_at
) VALUES (
    1, 1, 'c1', 'inbound', 'unlinked', 'appointment_booked', TRUE, 'linked',
    now() - interval '3 days', now() - interval '3 days'
);
INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id, created_at)
VALUES (1, 1, 1, 'retell_webhook', 'scheduled', 'uid-1', now() - interval '3 days');
SET LOCAL session_replication_role = origin;

-- The application cancels it today, misspelt, through the triggers.
UPDATE appointments SET status = 'canceled'
WHERE id = 1;

SELECT results_eq(
    $$SELECT offending FROM guard.detect() WHERE check_id = 'unknown_value'$$,
    $$VALUES (0)$$,
    'a detection pass does not see an old row updated today: it is outside the window'
);
SELECT results_eq(
    $$SELECT check_id, offending, opened, repeated FROM guard.sweep_checks()$$,
    $$VALUES ('unknown_value'::text, 1, 1, 0)$$,
    'the sweep reads the checks marked sweep, only those, whole: one alert for the old row'
);
SELECT results_eq(
    $$SELECT entity_type, entity_id, details ->> 'status', observed_at IS NULL FROM guard.alerts
      WHERE check_id = 'unknown_value' AND status = 'open'$$,
    $$VALUES ('appointment'::text, 1::bigint, 'canceled'::text, TRUE)$$,
    'the alert names the value and keeps no observed_at (no detection latency sample)'
);
SELECT results_eq(
    $$SELECT opened, repeated FROM guard.sweep_checks()$$,
    $$VALUES (0, 1)$$,
    'the next sweep bumps the same alert'
);
SELECT results_eq(
    $$SELECT offending, resolved FROM guard.detect() WHERE check_id = 'unknown_value'$$,
    $$VALUES (1, 0)$$,
    'a detection pass re-checks the open alert''s row and keeps it open'
);

UPDATE appointments SET status = 'cancelled'
WHERE id = 1;
SELECT results_eq(
    $$SELECT resolved FROM guard.detect() WHERE check_id = 'unknown_value'$$,
    $$VALUES (1)$$,
    'once fixed, the next detection pass resolves it'
);
SELECT is(
    (
        SELECT appointment_made FROM calls
        WHERE id = 1
    ),
    FALSE,
    'and the corrected status unbooks the call'
);

-- A check not marked sweep, or disabled, is not read by the sweep.
UPDATE guard.checks SET enabled = FALSE
WHERE id = 'unknown_value';
SELECT is_empty(
    $$SELECT * FROM guard.sweep_checks()$$,
    'a disabled check is not swept'
);
UPDATE guard.checks SET enabled = TRUE, sweep = FALSE
WHERE id = 'unknown_value';
SELECT is_empty(
    $$SELECT * FROM guard.sweep_checks()$$,
    'a check not marked sweep is not swept'
);

SELECT * FROM finish();
ROLLBACK;
