-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking contradicts them now. The application may still insert
-- the appointment in the same transaction (the call first, then its appointment), so the claim is
-- judged when the transaction commits (guard.check_flags_at_commit): corrected there, or refused
-- in reject mode.
-- SECURITY DEFINER: it records the calls in guard.flag_checks_at_commit, which the application
-- may not write itself.
CREATE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    claiming_calls := ARRAY(
        SELECT n.id FROM new_rows AS n WHERE n.appointment_made OR n.appointment_link_status = 'linked'
    );
    -- The INSERT runs only when there is something to record: a statement that is never run is
    -- never initialised (the everyday insert of a call claims nothing).
    IF cardinality(claiming_calls) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, reason)
        VALUES (claiming_calls, 'a new call claimed a booking its appointments do not show');
    END IF;
    RETURN NULL;
END;
$$;
