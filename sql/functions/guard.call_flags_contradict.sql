-- I3: whether a call's booking flags contradict its appointments, given whether it has an active
-- one: the rule of guard.call_flags_to_correct (lost = FALSE) written over one call's values.
-- `EXISTS (SELECT FROM guard.call_flags_to_correct(ARRAY[id], FALSE))` answers the same for a
-- stored call; this form lets the check of an application's flag write
-- (guard.check_flag_write) read one index entry and compare in PL/pgSQL instead
-- of starting up the derivation's generic plan, about 150k instructions per write
-- (docs/invariants.md, "Measured reasons for the shapes in sql/"). tests/db/test_flag_rule.py
-- proves the two agree on every combination of values.
-- LANGUAGE sql, IMMUTABLE, one expression: inlined into the caller's expression.
CREATE OR REPLACE FUNCTION guard.call_flags_contradict(
    made boolean,
    link_status text,
    linked_at timestamptz,
    outcome text,
    failed boolean,
    has_active boolean
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN
made IS DISTINCT FROM has_active
OR CASE
    WHEN has_active
        THEN
            link_status IS DISTINCT FROM 'linked'
            OR linked_at IS NULL
            OR outcome IS DISTINCT FROM 'appointment_booked'
            OR failed IS NOT FALSE
    ELSE link_status IS NOT NULL AND link_status NOT IN ('unlinked', 'creation_failed')
END;
