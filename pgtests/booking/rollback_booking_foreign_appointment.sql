-- guard.rollback_booking on adopted data: an active appointment of another company linked to the
-- call (loaded with the triggers off) is not the call's booking. The call is marked failed and
-- the alert and review item say it is not still booked; a call with its own company's active
-- appointment is left as it is and said to be still booked.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (1221, 'own'), (1222, 'other');
INSERT INTO calls (id, company_id, retell_call_id, direction, status)
VALUES
(12201, 1221, 'r1', 'inbound', 'ended'),
(12202, 1221, 'r2', 'inbound', 'ended');
SELECT pgtap_setup.loaded_appointment(12201, 1222, 12201, 'uid-r1');
SELECT pgtap_setup.loaded_appointment(12202, 1221, 12202, 'uid-r2');

SELECT guard.rollback_booking(12201, 'calendar_booking_failure');
SELECT guard.rollback_booking(12202, 'calendar_booking_failure');

SELECT is(
    (
        SELECT array_agg(row(id, session_outcome, booking_failed)::text ORDER BY id)
        FROM calls
        WHERE id IN (12201, 12202)
    ),
    ARRAY['(12201,creation_failed,t)', '(12202,,f)'],
    'the call with only another company''s appointment is marked failed; the booked one is not'
);
SELECT is(
    (
        SELECT array_agg(row(entity_id, details ->> 'still_booked')::text ORDER BY entity_id)
        FROM guard.alerts
        WHERE check_id = 'booking_rolled_back' AND company_id = 1221
    ),
    ARRAY['(12201,false)', '(12202,true)'],
    'the alerts say which call is still booked'
);
SELECT is(
    (
        SELECT array_agg(row(call_id, details ->> 'still_booked')::text ORDER BY call_id)
        FROM guard.review_items
        WHERE company_id = 1221
    ),
    ARRAY['(12201,false)', '(12202,true)'],
    'and so do the review items'
);
SELECT is(
    (
        SELECT appointment_link_status FROM calls
        WHERE id = 12201
    ),
    'creation_failed',
    'the failed call records a booking the calendar never made'
);

SELECT * FROM finish();
ROLLBACK;
