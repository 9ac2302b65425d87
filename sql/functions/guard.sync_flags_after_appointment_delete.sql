-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: calls that lost an active appointment
-- keep their flags only while another active appointment remains.
CREATE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    lost_calls bigint[];
BEGIN
    SELECT array_agg(DISTINCT o.call_id) INTO lost_calls
    FROM old_rows AS o
    WHERE o.call_id IS NOT NULL AND o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled';
    IF lost_calls IS NOT NULL THEN
        PERFORM guard.refresh_call_flags(lost_calls, lost_from => lost_calls);
    END IF;
    RETURN NULL;
END;
$$;
