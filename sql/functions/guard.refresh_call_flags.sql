-- I3, I4: correct the booking flags of calls that someone else wrote (the application's writes
-- checked at commit, reconcile, `guard db validate`), from their active appointments
-- (guard.call_flags_to_correct derives them). Each correction is audited with before and after
-- and one alert per company is raised or bumped. Returns the number of calls corrected.
-- The appointment triggers derive flags themselves (guard.sync_flags_after_appointment_*):
-- nothing to audit there.
-- SECURITY DEFINER: it writes the correction audit and alerts, which the application may not
-- write itself; it is not granted to the application (its callers are definer functions and
-- the owner's jobs).
CREATE OR REPLACE FUNCTION guard.refresh_call_flags(call_ids bigint[], audit_reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compiles this function's large statement for longer than it runs (docs/invariants.md,
-- "Measured reasons for the shapes in sql/").
SET jit = off
-- Custom plans re-plan the big statement on every call, and PostgreSQL kept choosing them
-- (bench/instructions.py); the generic plan is index lookups joined by nested loops, linear in
-- the number of calls.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    corrected integer;
BEGIN
    IF audit_reason IS NULL THEN
        RAISE EXCEPTION 'a correction needs a reason for its audit'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A session with a tenant set may only touch that tenant's calls.
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids) AND c.company_id IS DISTINCT FROM guard.current_company();
    END IF;
    -- Lock the calls first, in id order, and look at their appointments in the next statement
    -- (see guard.sync_flags_after_appointment_delete).
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    -- RETURNING f.*: the FROM side holds each call's flags as they were before this UPDATE.
    WITH changed AS (
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            -- A correction that leaves a booking claim without an appointment standing (a
            -- phantom booking: outcome booked, now made = false) keeps the call's updated_at:
            -- the grace period counts from the claim, and restarting it hid the phantom from
            -- detection for another grace period after every reconcile (guard db validate).
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE guard.to_app_time(now(), c.updated_at, guard.app_time_zone())
            END
        FROM guard.call_flags_to_correct(call_ids, FALSE) AS f
        WHERE c.ctid = f.row_id
        RETURNING f.*
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason, actor
        )
        SELECT
            'I3_appointment_flags',
            ch.company_id,
            'call',
            ch.id,
            jsonb_build_object(
                'appointment_made', ch.old_made,
                'appointment_link_status', ch.old_link_status,
                'appointment_linked_at', ch.old_linked_at,
                'session_outcome', ch.old_outcome,
                'booking_failed', ch.old_failed,
                'booking_confirmed', ch.old_confirmed
            ),
            jsonb_build_object(
                'appointment_made', ch.new_made,
                'appointment_link_status', ch.new_link_status,
                'appointment_linked_at', ch.new_linked_at,
                'session_outcome', ch.new_outcome,
                'booking_failed', ch.new_failed,
                'booking_confirmed', ch.new_confirmed
            ),
            audit_reason,
            session_user  -- who wrote: current_user is the owner here (SECURITY DEFINER)
        FROM changed AS ch
        RETURNING company_id, entity_id
    ),

    alerted AS (
        INSERT INTO guard.alerts (
            fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            'flags_corrected_on_write:company:' || au.company_id,
            'flags_corrected_on_write',
            au.company_id,
            'company',
            au.company_id,
            'medium',
            'booking flags that contradicted the appointments were corrected',
            jsonb_build_object(
                'corrected_calls', count(*),
                'sample_call_ids', (array_agg(au.entity_id ORDER BY au.entity_id))[1:10],
                'reason', audit_reason
            )
        FROM audited AS au
        GROUP BY au.company_id
        ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
            SET
                occurrences = guard.alerts.occurrences + 1,
                last_seen_at = now(),
                details = excluded.details
        RETURNING 1
    )

    SELECT count(*) INTO corrected FROM changed;
    RETURN corrected;
END;
$$;
