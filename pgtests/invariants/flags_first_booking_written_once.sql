-- I3: an appointment inserted after its transaction wrote the call's flags as booked (the
-- application's flags first, then the appointment) leaves the call as that write left it: no
-- second version of the row (guard.sync_flags_after_appointment_insert). Every other call gets
-- the insert trigger's UPDATE as before: one not booked yet, one booked but stamped earlier, and
-- one written in a subtransaction (its xmin is not the transaction's).
BEGIN;
SELECT plan(9);

INSERT INTO companies (id, name) VALUES (1201, 'A');
INSERT INTO calls (id, company_id, retell_call_id, session_outcome, updated_at)
SELECT
    g,
    1201,
    'w' || g,
    'information_only',
    now() - interval '1 hour'
FROM generate_series(12001, 12004) AS g;

-- 12001: the flags first, stamped now; 12002: the flags first, updated_at not written;
-- 12003: not booked yet; 12004: the flags first, in a subtransaction (below)
UPDATE calls
SET
    session_outcome = 'appointment_booked',
    appointment_made = TRUE,
    appointment_link_status = 'linked',
    appointment_linked_at = now() - interval '1 minute',
    booking_confirmed = TRUE,
    updated_at = now()
WHERE id = 12001;
UPDATE calls
SET
    session_outcome = 'appointment_booked',
    appointment_made = TRUE,
    appointment_link_status = 'linked',
    appointment_linked_at = now() - interval '1 minute'
WHERE id = 12002;
-- a block with an exception handler runs in a subtransaction of its own
DO $$
BEGIN
    UPDATE calls
    SET
        session_outcome = 'appointment_booked',
        appointment_made = TRUE,
        appointment_link_status = 'linked',
        appointment_linked_at = now() - interval '1 minute',
        updated_at = now()
    WHERE id = 12004;
EXCEPTION WHEN division_by_zero THEN
    RAISE;
END;
$$;

CREATE TEMP TABLE before_insert AS
SELECT
    id,
    ctid AS version
FROM calls
WHERE id BETWEEN 12001 AND 12004;

-- the appointment insert wrote the call again when its row version moved
CREATE FUNCTION pg_temp.rewritten(call_id bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT c.ctid <> b.version
    FROM calls AS c JOIN before_insert AS b ON b.id = c.id
    WHERE c.id = call_id
$$;

INSERT INTO appointments (company_id, call_id, source, calcom_v2_booking_id)
SELECT
    1201,
    g,
    'retell_webhook',
    'uid-' || g
FROM generate_series(12001, 12004) AS g;

SELECT ok(
    NOT pg_temp.rewritten(12001),
    'a call this transaction already wrote as booked, stamped now, is not written again'
);
SELECT is(pgtap_setup.call_flags(12001), 'true/linked/true/appointment_booked/false', 'and it is booked');
SELECT is(
    (
        SELECT appointment_linked_at FROM calls
        WHERE id = 12001
    ),
    now() - interval '1 minute',
    'its link time is the one the application wrote'
);
SELECT ok(
    pg_temp.rewritten(12002),
    'a booked call whose write did not stamp updated_at is written'
);
SELECT is(
    (
        SELECT updated_at FROM calls
        WHERE id = 12002
    ), now(), 'and stamped now'
);
SELECT is(pgtap_setup.call_flags(12003), 'true/linked/true/appointment_booked/false', 'a call not booked yet is booked');
SELECT ok(
    pg_temp.rewritten(12004),
    'a call a subtransaction wrote is written again'
);

-- at commit, the flags written first agree with the appointments: nothing to correct
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SELECT is(
    (
        SELECT count(*) FROM guard.correction_audit
        WHERE entity_type = 'call' AND entity_id BETWEEN 12001 AND 12004
    ),
    0::bigint,
    'nothing is corrected at commit'
);
SELECT is(
    (SELECT array_agg(pgtap_setup.call_flags(g) ORDER BY g) FROM generate_series(12001, 12004) AS g),
    array_fill('true/linked/true/appointment_booked/false'::text, ARRAY[4]),
    'every call is booked'
);

SELECT * FROM finish();
ROLLBACK;
