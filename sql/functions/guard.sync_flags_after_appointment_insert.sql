-- I3, AFTER INSERT ... FOR EACH STATEMENT on appointments: calls that received an active
-- appointment now have one; set-based, one statement per firing whatever the number of rows.
CREATE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    booked_calls bigint[];
BEGIN
    SELECT array_agg(DISTINCT n.call_id) INTO booked_calls
    FROM new_rows AS n
    WHERE n.call_id IS NOT NULL AND n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled';
    IF booked_calls IS NOT NULL THEN
        PERFORM guard.refresh_call_flags(booked_calls, known_active => TRUE);
    END IF;
    RETURN NULL;
END;
$$;
