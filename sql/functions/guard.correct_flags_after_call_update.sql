-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. A changed row is a new version that no old version matches on the flags:
-- both transition tables grouped together (old -1, new +1), never joined (see
-- guard.sync_flags_after_appointment_update).
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
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    written_calls := ARRAY(
        SELECT u.id
        FROM (
            SELECT
                o.id,
                o.appointment_made,
                o.appointment_link_status,
                o.appointment_linked_at,
                o.session_outcome,
                o.booking_failed,
                -1 AS side
            FROM old_rows AS o
            UNION ALL
            SELECT
                n.id,
                n.appointment_made,
                n.appointment_link_status,
                n.appointment_linked_at,
                n.session_outcome,
                n.booking_failed,
                1 AS side
            FROM new_rows AS n
        ) AS u
        GROUP BY
            u.id,
            u.appointment_made,
            u.appointment_link_status,
            u.appointment_linked_at,
            u.session_outcome,
            u.booking_failed
        HAVING sum(u.side) > 0
    );
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
