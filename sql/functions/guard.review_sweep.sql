-- Hourly: resolve open review items whose problem has gone by itself. A booking failure or a
-- failed validation is gone when the call has an active appointment after all; an orphaned or
-- cross-tenant appointment is gone when it is linked to a call of its own company, or is no
-- longer active. Returns the number of items resolved.
CREATE OR REPLACE FUNCTION guard.review_sweep()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    swept integer;
BEGIN
    UPDATE guard.review_items AS r
    SET
        status = 'resolved',
        closed_by = 'guard:review_sweep',
        closed_at = now(),
        note = 'the problem is gone: nothing left to do'
    WHERE
        r.status = 'open'
        AND (
            (
                r.reason IN ('calendar_booking_failure', 'validation_failure')
                AND r.call_id IS NOT NULL
                AND EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = r.call_id
                        AND a.company_id = r.company_id
                        AND guard.is_active_appointment(a.status, a.deleted_at)
                )
            )
            OR (
                r.appointment_id IS NOT NULL
                AND r.reason = 'other'
                AND EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    LEFT JOIN public.calls AS c ON a.call_id = c.id
                    WHERE
                        a.id = r.appointment_id
                        AND (
                            a.deleted_at IS NOT NULL
                            OR a.status = 'cancelled'
                            OR c.company_id = a.company_id
                        )
                )
            )
        );
    GET DIAGNOSTICS swept = ROW_COUNT;
    RETURN swept;
END;
$$;
