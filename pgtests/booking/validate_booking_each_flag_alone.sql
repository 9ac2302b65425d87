-- guard.validate_booking's flag test, one term at a time: a booked call validates only when
-- appointment_made, appointment_link_status 'linked', session_outcome 'appointment_booked' and
-- booking_failed false all hold. Each term written wrong alone (by a writer that bypassed the
-- triggers, as on an adopted database), or NULL where the column allows it, is
-- call_flags_disagree.
BEGIN;
SELECT plan(8);

INSERT INTO companies (id, name) VALUES (1151, 'flags');
INSERT INTO calls (id, company_id, retell_call_id) VALUES (11501, 1151, 'f1');
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id)
VALUES (11501, 1151, 11501, 'retell_webhook', 'uid-11501');

CREATE FUNCTION pg_temp.validated() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(v.reason, 'ok') FROM guard.validate_booking(11501, 11501, 'uid-11501') AS v
$$;
-- The call's flags with one term written as given, the triggers bypassed; validated; put back.
CREATE FUNCTION pg_temp.validated_with(assignment text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answer text;
BEGIN
    SET LOCAL session_replication_role = replica;
    EXECUTE 'UPDATE calls SET ' || assignment || ' WHERE id = 11501';
    SET LOCAL session_replication_role = origin;
    answer := pg_temp.validated();
    SET LOCAL session_replication_role = replica;
    UPDATE calls
    SET
        appointment_made = TRUE, appointment_link_status = 'linked',
        session_outcome = 'appointment_booked', booking_failed = FALSE
    WHERE id = 11501;
    SET LOCAL session_replication_role = origin;
    RETURN answer;
END;
$$;

SELECT is(pg_temp.validated(), 'ok', 'the booked call validates');
SELECT is(pg_temp.validated_with(flag), 'call_flags_disagree', description)
FROM (
    VALUES
    ('appointment_made = FALSE', 'appointment_made false alone'),
    ('appointment_link_status = ''creation_failed''', 'a link status other than linked alone'),
    ('appointment_link_status = NULL', 'a NULL link status alone'),
    ('session_outcome = ''information_only''', 'another session outcome alone'),
    ('session_outcome = NULL', 'a NULL session outcome alone'),
    ('booking_failed = TRUE', 'booking_failed alone')
) AS each_flag (flag, description);
SELECT is(pg_temp.validated(), 'ok', 'put back, the call validates again');

SELECT * FROM finish();
ROLLBACK;
