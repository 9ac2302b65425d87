-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: the calls of a statement that wrote booking
-- flags (marked by guard.note_flag_write, the BEFORE trigger on those columns) are checked against
-- their appointments. A statement that wrote no flag column ends at the first line. Writes by
-- Booking Guard's own triggers (depth > 1) are derived already.
-- A write that agrees with the appointments (the everyday case: the application sets the flags
-- after writing the appointment) ends here. One that contradicts them may be a state the
-- transaction has not finished (the call's flags first, then its appointment), so it is judged
-- when the transaction commits (guard.check_flags_at_commit): corrected there, or refused in
-- reject mode.
-- SECURITY DEFINER: it records the calls in guard.flag_checks_at_commit, which the application
-- may not write itself.
CREATE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The check takes the call ids as a parameter: see guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    written_calls bigint[];
    contradicting bigint[];
BEGIN
    IF
        pg_trigger_depth() > 1
        OR current_setting('booking_guard.i3_flags_written', TRUE) IS DISTINCT FROM 'on'
    THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('booking_guard.i3_flags_written', 'off', TRUE);
    written_calls := ARRAY(SELECT n.id FROM new_rows AS n);
    IF cardinality(written_calls) = 0 THEN
        RETURN NULL;
    END IF;
    contradicting := ARRAY(
        SELECT f.id FROM guard.call_flags_to_correct(written_calls, FALSE) AS f
    );
    IF cardinality(contradicting) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, reason)
        VALUES (contradicting, 'an update wrote booking flags that contradict the appointments');
    END IF;
    RETURN NULL;
END;
$$;
