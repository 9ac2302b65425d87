-- guard.check_flag_write on adopted data: an appointment of another company linked to the call
-- (loaded with the triggers off) is not the call's booking. A flag write that claims a booking
-- queues the call for detection and records a check for commit, as for a call without any
-- appointment; the same write on a call whose own company's appointment is active does neither.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (1191, 'own'), (1192, 'other');
INSERT INTO calls (id, company_id, retell_call_id, direction, status, created_at)
VALUES
(11901, 1191, 'f1', 'inbound', 'ongoing', now() - interval '5 min'),
(11902, 1191, 'f2', 'inbound', 'ongoing', now() - interval '5 min');
SELECT pgtap_setup.loaded_appointment(11901, 1192, 11901, 'uid-f1');
SELECT pgtap_setup.loaded_appointment(11902, 1191, 11902, 'uid-f2');
DELETE FROM guard.detection_queue;
DELETE FROM guard.flag_checks_at_commit;

-- the flags of a booked call, as the application writes them
UPDATE calls
SET
    session_outcome = 'appointment_booked',
    appointment_made = TRUE,
    appointment_link_status = 'linked',
    appointment_linked_at = now(),
    booking_failed = FALSE
WHERE id IN (11901, 11902);

SELECT is(
    (SELECT array_agg(call_id ORDER BY call_id) FROM guard.detection_queue),
    ARRAY[11901::bigint],
    'the call whose only appointment is another company''s is queued for detection'
);
SELECT is(
    (SELECT array_agg(c ORDER BY c) FROM guard.flag_checks_at_commit, unnest(call_ids) AS c),
    ARRAY[11901::bigint],
    'its claimed booking is recorded to be judged at commit'
);
SELECT is_empty(
    'SELECT FROM guard.detection_queue WHERE call_id = 11902',
    'a call with its own company''s active appointment is not queued'
);
SELECT is(
    (
        SELECT count(*) FROM guard.flag_checks_at_commit
        WHERE 11902 = any(call_ids)
    ),
    0::bigint,
    'nor recorded for commit'
);

SELECT * FROM finish();
ROLLBACK;
