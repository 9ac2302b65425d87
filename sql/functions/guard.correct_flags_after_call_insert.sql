-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking contradicts them now. The application may still insert
-- the appointment in the same transaction (the call first, then its appointment), so the claim is
-- judged when the transaction commits (guard.check_flags_at_commit): corrected there, or refused
-- in reject mode.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md): it fires for every insert of a call, and
-- a SECURITY DEFINER function with SET clauses made each firing cost several times more. The
-- writer may record a pending check (guard.flag_checks_at_commit) but not read or remove one.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    claiming_calls := ARRAY(
        SELECT n.id FROM new_rows AS n WHERE n.appointment_made OR n.appointment_link_status = 'linked'
    );
    -- The INSERT runs only when there is something to record: a statement that is never run is
    -- never initialised (the everyday insert of a call claims nothing).
    IF pg_catalog.cardinality(claiming_calls) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (claiming_calls, 'insert');
    END IF;
    RETURN NULL;
END;
$$;
