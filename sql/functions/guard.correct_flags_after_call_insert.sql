-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking is corrected (or refused, in reject mode).
CREATE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    SELECT array_agg(n.id) INTO claiming_calls
    FROM new_rows AS n
    WHERE n.appointment_made OR n.appointment_link_status = 'linked';
    IF claiming_calls IS NOT NULL THEN
        PERFORM guard.correct_call_writes(
            claiming_calls, 'a new call claimed a booking its appointments do not show'
        );
    END IF;
    RETURN NULL;
END;
$$;
