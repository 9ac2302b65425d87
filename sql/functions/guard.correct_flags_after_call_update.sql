-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. Changed rows are found with EXCEPT, not a join of the transition tables.
CREATE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    written_calls bigint[];
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(w.id) INTO written_calls
    FROM (
        SELECT
            n.id,
            n.appointment_made,
            n.appointment_link_status,
            n.appointment_linked_at,
            n.session_outcome,
            n.booking_failed
        FROM new_rows AS n
        EXCEPT
        SELECT
            o.id,
            o.appointment_made,
            o.appointment_link_status,
            o.appointment_linked_at,
            o.session_outcome,
            o.booking_failed
        FROM old_rows AS o
    ) AS w;
    IF written_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            written_calls, 'an update wrote booking flags that contradict the appointments'
        );
    END IF;
    RETURN NULL;
END;
$$;
