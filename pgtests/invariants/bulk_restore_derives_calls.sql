-- guard.sync_flags_after_appointment_update when no changed appointment was active before: one
-- statement restores two calls' cancelled appointments (notes 'T<id>' only, no call lost one),
-- and both calls are derived booked; a statement that cancels them again derives both unbooked.
-- guard.sync_flags_after_appointment_delete: one statement deleting two calls' active
-- appointments (the smallest delete that is not the one-row path) derives both unbooked.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1251, 'restore');
INSERT INTO calls (id, company_id, retell_call_id, direction, status)
VALUES
(12501, 1251, 's1', 'inbound', 'ended'),
(12502, 1251, 's2', 'inbound', 'ended');
INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id)
VALUES
(12501, 1251, 12501, 'retell_webhook', 'cancelled', 'uid-s1'),
(12502, 1251, 12502, 'retell_webhook', 'cancelled', 'uid-s2');

UPDATE appointments SET status = 'scheduled'
WHERE company_id = 1251;
SELECT is(
    (
        SELECT array_agg(row(id, appointment_made, appointment_link_status)::text ORDER BY id)
        FROM calls
        WHERE company_id = 1251
    ),
    ARRAY['(12501,t,linked)', '(12502,t,linked)'],
    'one statement restoring two calls'' appointments derives both booked'
);

UPDATE appointments SET status = 'cancelled'
WHERE company_id = 1251;
SELECT is(
    (
        SELECT array_agg(row(id, appointment_made)::text ORDER BY id)
        FROM calls
        WHERE company_id = 1251
    ),
    ARRAY['(12501,f)', '(12502,f)'],
    'one statement cancelling both derives both unbooked'
);

INSERT INTO calls (id, company_id, retell_call_id, direction, status)
VALUES
(12503, 1251, 's3', 'inbound', 'ended'),
(12504, 1251, 's4', 'inbound', 'ended');
INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id)
VALUES
(12503, 1251, 12503, 'retell_webhook', 'scheduled', 'uid-s3'),
(12504, 1251, 12504, 'retell_webhook', 'scheduled', 'uid-s4');
DELETE FROM appointments
WHERE id IN (12503, 12504);
SELECT is(
    (
        SELECT array_agg(row(id, appointment_made)::text ORDER BY id)
        FROM calls
        WHERE id IN (12503, 12504)
    ),
    ARRAY['(12503,f)', '(12504,f)'],
    'one statement deleting two calls'' active appointments derives both unbooked'
);

SELECT * FROM finish();
ROLLBACK;
