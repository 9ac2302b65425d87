-- guard.note_appointment_change keeps its notes bounded in a bulk statement: a note of exactly
-- 4,000 characters still takes the next call, one longer becomes 'many', and the statement
-- trigger then derives every call from its transition tables. A probe trigger, named to fire
-- right after the note trigger for each row, records the note each row leaves.
BEGIN;
SELECT plan(5);

INSERT INTO companies (id, name) VALUES (1211, 'bulk');
-- the first call's id has seven digits, the others six: 'L1000000' and then ',L100001' ...
-- each eight characters, so the 500th row leaves a note of exactly 4,000
INSERT INTO calls (id, company_id, retell_call_id, direction, status)
SELECT
    g,
    1211,
    'n' || g,
    'inbound',
    'ended'
FROM (
    SELECT 1000000 AS g
    UNION ALL
    SELECT generate_series(100001, 100501)
) AS ids;
INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id)
SELECT
    g AS id,
    1211,
    g AS call_id,
    'retell_webhook',
    'scheduled',
    'uid-n' || g
FROM (
    SELECT 1000000 AS g
    UNION ALL
    SELECT generate_series(100001, 100501)
) AS ids
ORDER BY g = 1000000 DESC, g;

CREATE TEMP TABLE note_seen (n bigserial, note text);
CREATE FUNCTION public.probe_appointment_note() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO note_seen (note)
    VALUES (current_setting('booking_guard.appointment_changes', TRUE));
    RETURN NULL;
END;
$$;
CREATE TRIGGER guard_appointments_note_change_probe
AFTER UPDATE OF status ON public.appointments
FOR EACH ROW EXECUTE FUNCTION public.probe_appointment_note();

UPDATE appointments SET status = 'cancelled'
WHERE company_id = 1211;

SELECT is(
    (
        SELECT note FROM note_seen
        ORDER BY n LIMIT 1
    ),
    'L1000000',
    'the first row notes its call (the seven-digit one)'
);
SELECT is(
    (
        SELECT length(s.note) FROM note_seen AS s
        WHERE s.n = (SELECT min(f.n) + 499 FROM note_seen AS f)
    ),
    4000,
    'the 500th row leaves a note of exactly 4,000 characters'
);
SELECT is(
    (SELECT max(length(note)) FILTER (WHERE note <> 'many') FROM note_seen),
    4008,
    'a note of 4,000 characters still takes the next call'
);
SELECT is(
    (
        SELECT note FROM note_seen
        ORDER BY n DESC LIMIT 1
    ),
    'many',
    'one longer becomes many'
);
SELECT is_empty(
    'SELECT FROM calls WHERE company_id = 1211 AND appointment_made IS NOT FALSE',
    'every call of the bulk cancel lost its booking'
);

SELECT * FROM finish();
ROLLBACK;
