-- guard.drain_detection_queue queues a claim still inside its grace period again for the end of
-- it when the call has no active appointment: a cancelled or soft-deleted appointment, or
-- another company's, is none; an active one of its own is.
BEGIN;
SELECT plan(1);

INSERT INTO companies (id, name) VALUES (651, 'A'), (652, 'B');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, status, session_outcome,
    appointment_made, created_at, updated_at
)
SELECT
    g,
    651,
    'q' || g,
    'inbound',
    'unlinked',
    'ended',
    'appointment_booked',
    FALSE,
    now() - interval '5 min',
    now() - interval '10 s'
FROM generate_series(6501, 6504) AS g;
INSERT INTO appointments (id, company_id, call_id, source, status, deleted_at, calcom_v2_booking_id) VALUES
(6501, 651, 6501, 'retell_webhook', 'cancelled', NULL, 'u6501'),
(6502, 651, 6502, 'retell_webhook', 'scheduled', now() - interval '1 min', 'u6502'),
(6503, 652, 6503, 'retell_webhook', 'scheduled', NULL, 'u6503'),
(6504, 651, 6504, 'retell_webhook', 'scheduled', NULL, 'u6504');
SET LOCAL session_replication_role = origin;
DELETE FROM guard.detection_queue;
INSERT INTO guard.detection_queue (call_id, due_at)
SELECT
    g,
    now()
FROM generate_series(6501, 6504) AS g;

SELECT guard.drain_detection_queue(10);
SELECT results_eq(
    $$SELECT call_id, due_at - now() FROM guard.detection_queue ORDER BY call_id$$,
    $$VALUES (6501::bigint, interval '20 s'), (6502, interval '20 s'), (6503, interval '20 s')$$,
    'drain_detection_queue: a call whose appointment is cancelled, soft-deleted or another '
    'company''s is queued again for the end of its grace; one with its active appointment not'
);

SELECT * FROM finish();
ROLLBACK;
