-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: calls that lost an active appointment
-- keep their flags only while another active appointment remains.
CREATE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One statement finds the calls and derives their flags: a one-row delete pays for one
    -- executor run here, not two.
    PERFORM guard.refresh_call_flags(lost.calls, lost_from => lost.calls)
    FROM (
        SELECT array_agg(DISTINCT o.call_id) AS calls
        FROM old_rows AS o
        WHERE
            o.call_id IS NOT NULL
            AND o.deleted_at IS NULL
            AND o.status IS DISTINCT FROM 'cancelled'
    ) AS lost
    WHERE lost.calls IS NOT NULL;
    RETURN NULL;
END;
$$;
