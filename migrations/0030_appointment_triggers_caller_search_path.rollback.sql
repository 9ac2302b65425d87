-- Rollback of 0030_appointment_triggers_caller_search_path: the definitions the migrations before it built.

CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    touched bigint[];
    lost bigint[];
BEGIN
    SELECT
        coalesce(array_agg(DISTINCT v.call_id), '{}'),
        coalesce(array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}')
    INTO touched, lost
    FROM (
        SELECT u.call_id, u.active, sum(u.side) AS side
        FROM (
            SELECT
                o.id,
                o.call_id,
                o.company_id,
                guard.is_active_appointment(o.status, o.deleted_at) AS active,
                -1 AS side
            FROM old_rows AS o
            UNION ALL
            SELECT
                n.id,
                n.call_id,
                n.company_id,
                guard.is_active_appointment(n.status, n.deleted_at) AS active,
                1 AS side
            FROM new_rows AS n
        ) AS u
        GROUP BY u.id, u.call_id, u.company_id, u.active
        HAVING sum(u.side) <> 0
    ) AS v
    WHERE v.call_id IS NOT NULL;
    IF cardinality(touched) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM FROM public.calls AS c WHERE c.id = ANY (touched) ORDER BY c.id FOR NO KEY UPDATE;
    IF cardinality(lost) > 0 THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(lost, TRUE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    -- lost is a subset of touched: equal sizes mean nothing is left to derive.
    IF cardinality(touched) > cardinality(lost) THEN
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(touched, FALSE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    RETURN NULL;
END;
$function$;

CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path TO 'pg_catalog'
SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    lost bigint[];
BEGIN
    lost := ARRAY(
        SELECT o.call_id
        FROM old_rows AS o
        WHERE o.call_id IS NOT NULL AND guard.is_active_appointment(o.status, o.deleted_at)
    );
    IF cardinality(lost) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM FROM public.calls AS c WHERE c.id = ANY (lost) ORDER BY c.id FOR NO KEY UPDATE;
    -- A correction that leaves a booking claim without an appointment standing (a phantom:
    -- outcome booked, made = false) keeps the call's updated_at, as refresh_call_flags does.
    UPDATE public.calls AS c
    SET
        appointment_made = f.new_made,
        appointment_link_status = f.new_link_status,
        appointment_linked_at = f.new_linked_at,
        session_outcome = f.new_outcome,
        booking_failed = f.new_failed,
        booking_confirmed = f.new_confirmed,
        updated_at = CASE
            WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
            ELSE now()
        END
    FROM guard.call_flags_to_correct(lost, TRUE) AS f
    WHERE c.ctid = f.row_id;
    RETURN NULL;
END;
$function$;
