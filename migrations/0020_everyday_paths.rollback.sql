-- Back to the bodies of 0017_app_function_hardening (refresh_call_flags) and 0006_invariants (the
-- appointment and call triggers' functions); the derivation function goes.

-- I3, I4: recompute the booking flags of the given calls from their active appointments and
-- correct the rows that differ, in one set-based statement. Every path that can unbook a call
-- derives its flags here (a new appointment only ever books: see sync_flags_after_appointment_insert).
--   lost_from     calls that just lost an active appointment: with none left, a booked outcome
--                 becomes appointment_cancelled and the booking is no longer confirmed
--   audit_reason  the calls were written by someone else (the application, a legacy load): each
--                 correction is audited with before and after, and one alert per company raised
--   check_only    count the calls that would change, change nothing
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked outcome without an
-- appointment is left alone here: it is legitimate during the grace period (detection's job).
-- SECURITY DEFINER: the application's writes fire it (through its triggers) and it writes the
-- correction audit and alerts, which the application may not write itself.
CREATE OR REPLACE FUNCTION guard.refresh_call_flags(
    call_ids bigint[],
    lost_from bigint[] DEFAULT '{}',
    audit_reason text DEFAULT NULL,
    check_only boolean DEFAULT FALSE
)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compiles this function's large statements for longer than they run (bench/triggers.py:
-- a 10 000-row delete took 1.7 s with JIT, 0.3 s without).
SET jit = off
-- Custom plans re-plan the big statement on every call, and PostgreSQL kept choosing them: a
-- one-row appointment update or delete spent about 5.7 million of its 7.5 million instructions
-- planning (bench/instructions.py). The generic plan is index lookups joined by nested loops,
-- linear in the number of calls (a 10 000-row delete: 15 % more instructions, no worse shape).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    differing integer;
BEGIN
    -- A session with a tenant set may only touch that tenant's calls.
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids) AND c.company_id IS DISTINCT FROM guard.current_company();
    END IF;
    -- Lock the calls first, in id order, and look at their appointments in the next statement:
    -- under READ COMMITTED its snapshot sees every appointment committed by a writer we waited
    -- for, so concurrent writers cannot leave a call with flags derived from a stale view
    -- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking.
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    -- The calls as a set with their "lost one" flag: a join, not `id = ANY (lost_from)` per
    -- row, which is a linear search of the array once the plan is generic (a cached plan: the
    -- array is then a parameter, not a constant that could be hashed). With generic plans that
    -- made a 10 000-row delete 2.4x slower (bench/triggers.py --generic-plans).
    WITH target AS (
        SELECT t.id, bool_or(t.lost) AS lost_one
        FROM (
            SELECT x.id, FALSE AS lost FROM unnest(call_ids) AS x (id)
            UNION ALL
            SELECT x.id, TRUE AS lost FROM unnest(lost_from) AS x (id)
        ) AS t
        GROUP BY t.id
        HAVING NOT bool_and(t.lost)  -- only the given calls; lost_from is a subset of them
    ),

    current_state AS (
        SELECT
            c.id,
            c.company_id,
            c.appointment_made,
            c.appointment_link_status,
            c.appointment_linked_at,
            c.session_outcome,
            c.booking_failed,
            c.booking_confirmed,
            t.lost_one,
            EXISTS (
                SELECT
                FROM public.appointments AS a
                WHERE
                    a.call_id = c.id
                    AND a.company_id = c.company_id
                    AND a.deleted_at IS NULL
                    AND a.status IS DISTINCT FROM 'cancelled'
            ) AS has_active
        FROM target AS t
        INNER JOIN public.calls AS c ON t.id = c.id
    ),

    derived AS (
        SELECT
            s.*,
            s.has_active AS new_made,
            CASE
                WHEN s.has_active THEN 'linked'
                WHEN s.appointment_link_status IS NULL THEN NULL
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(s.appointment_linked_at, now())
                ELSE s.appointment_linked_at
            END AS new_linked_at,
            CASE
                WHEN s.has_active THEN 'appointment_booked'
                WHEN s.lost_one AND s.session_outcome = 'appointment_booked'
                    THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (s.lost_one AND NOT s.has_active) AS new_confirmed
        FROM current_state AS s
    ),

    changed AS (
        SELECT d.*
        FROM derived AS d
        WHERE (
            d.appointment_made, d.appointment_link_status, d.appointment_linked_at,
            d.session_outcome, d.booking_failed, d.booking_confirmed
        ) IS DISTINCT FROM (
            d.new_made, d.new_link_status, d.new_linked_at,
            d.new_outcome, d.new_failed, d.new_confirmed
        )
    ),

    updated AS (
        UPDATE public.calls AS c
        SET
            appointment_made = ch.new_made,
            appointment_link_status = ch.new_link_status,
            appointment_linked_at = ch.new_linked_at,
            session_outcome = ch.new_outcome,
            booking_failed = ch.new_failed,
            booking_confirmed = ch.new_confirmed,
            -- A correction that leaves a booking claim without an appointment standing (a
            -- phantom booking: outcome booked, now made = false) keeps the call's updated_at:
            -- the grace period counts from the claim, and restarting it hid the phantom from
            -- detection for another grace period after every reconcile (guard db validate).
            updated_at = CASE
                WHEN ch.new_outcome = 'appointment_booked' AND NOT ch.new_made THEN c.updated_at
                ELSE now()
            END
        FROM changed AS ch
        WHERE c.id = ch.id AND NOT check_only
        RETURNING c.id
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
                'appointment_made', ch.appointment_made,
                'appointment_link_status', ch.appointment_link_status,
                'appointment_linked_at', ch.appointment_linked_at,
                'session_outcome', ch.session_outcome,
                'booking_failed', ch.booking_failed,
                'booking_confirmed', ch.booking_confirmed
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
        WHERE audit_reason IS NOT NULL AND NOT check_only
        RETURNING company_id, entity_id
    ),

    alerted AS (
        INSERT INTO guard.alerts (
            fingerprint, rule_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            'I3_appointment_flags:company:' || au.company_id || ':corrected_writes',
            'I3_appointment_flags',
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

    SELECT count(*) INTO differing FROM changed;
    RETURN differing;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: recompute the calls on both sides of
-- every appointment whose call, company or activeness (status, soft delete) changed.
-- The changed rows are found with EXCEPT over the two transition tables, never with a join of
-- them: a cached nested-loop plan from a one-row firing made such a join quadratic (measured:
-- 56 s instead of 2.5 s for 100k rows).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    touched_calls bigint[];
    lost_calls bigint[];
BEGIN
    WITH before_state AS (
        SELECT
            o.id,
            o.call_id,
            o.company_id,
            (o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled') AS active
        FROM old_rows AS o
    ),

    after_state AS (
        SELECT
            n.id,
            n.call_id,
            n.company_id,
            (n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled') AS active
        FROM new_rows AS n
    ),

    gone AS (
        SELECT * FROM before_state
        EXCEPT
        SELECT * FROM after_state
    ),

    came AS (
        SELECT * FROM after_state
        EXCEPT
        SELECT * FROM before_state
    ),

    moved AS (
        SELECT g.call_id, g.active AS lost_active FROM gone AS g
        UNION ALL
        SELECT c.call_id, FALSE FROM came AS c
    )

    SELECT
        array_agg(DISTINCT m.call_id),
        coalesce(array_agg(DISTINCT m.call_id) FILTER (WHERE m.lost_active), '{}')
    INTO touched_calls, lost_calls
    FROM moved AS m
    WHERE m.call_id IS NOT NULL;

    IF touched_calls IS NOT NULL THEN
        PERFORM guard.refresh_call_flags(touched_calls, lost_from => lost_calls);
    END IF;
    RETURN NULL;
END;
$$;

-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: calls that lost an active appointment
-- keep their flags only while another active appointment remains.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
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

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. Changed rows are found with EXCEPT, not a join of the transition tables.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_update()
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

DROP FUNCTION guard.call_flags_to_correct(bigint[], bigint[]);
