-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. A changed row is a new version that no old version matches on the flags:
-- both transition tables grouped together (old -1, new +1), never joined (see
-- guard.sync_flags_after_appointment_update); one hash aggregate, cheaper than EXCEPT for the
-- application's everyday one-row update of a call.
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
    ) AS w;
    IF written_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            written_calls, 'an update wrote booking flags that contradict the appointments'
        );
    END IF;
    RETURN NULL;
END;
$$;
