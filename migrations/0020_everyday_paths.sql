-- Cheaper everyday one-row paths of the booking application (bench/instructions.py, one-row
-- workloads; bench/workload.py): same results, same locks.
-- - guard.call_flags_to_correct: the one definition of the derived booking flags, inlined by
--   the planner into each statement that uses it;
-- - refresh_call_flags: one statement per mode, so that the everyday path (a trigger deriving
--   flags, nothing to audit) is a plain UPDATE that never initialises the audit and alert inserts;
-- - the appointment update and delete triggers find their calls and call refresh_call_flags in
--   one statement; the appointment and call update triggers find changed rows with one hash
--   aggregate over both transition tables instead of two EXCEPTs.

-- I3, I4: the calls among call_ids whose booking flags differ from what their active appointments
-- say, with the flags they have (old_*) and the flags they should have (new_*). The one
-- definition of the derived flags: guard.refresh_call_flags corrects, audits or counts with it.
--   lost_from  calls that just lost an active appointment: with none left, a booked outcome
--              becomes appointment_cancelled and the booking is no longer confirmed
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked
-- outcome without an appointment is left alone: it is legitimate during the grace period
-- (detection's job).
-- One SELECT, LANGUAGE sql, STABLE, no SET clause, not SECURITY DEFINER: the planner inlines it
-- into the statement that calls it, so it costs what the same SQL written in place costs.
-- The calls are a join with unnest(), not `id = ANY (call_ids)` per row: in a cached generic
-- plan the array is a parameter, searched linearly for every row (bench/triggers.py
-- --generic-plans: a 10 000-row delete took 2.4x as long).
CREATE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost_from bigint[])
RETURNS TABLE (
    id bigint,
    company_id bigint,
    old_made boolean,
    old_link_status text,
    old_linked_at timestamptz,
    old_outcome text,
    old_failed boolean,
    old_confirmed boolean,
    new_made boolean,
    new_link_status text,
    new_linked_at timestamptz,
    new_outcome text,
    new_failed boolean,
    new_confirmed boolean
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        d.id,
        d.company_id,
        d.appointment_made,
        d.appointment_link_status,
        d.appointment_linked_at,
        d.session_outcome,
        d.booking_failed,
        d.booking_confirmed,
        d.has_active,
        d.new_link_status,
        d.new_linked_at,
        d.new_outcome,
        d.new_failed,
        d.new_confirmed
    FROM (
        SELECT
            s.*,
            CASE
                WHEN s.has_active THEN 'linked'
                WHEN s.appointment_link_status IS NULL THEN NULL
                ELSE 'unlinked'
            END AS new_link_status,
            CASE
                WHEN s.has_active THEN coalesce(s.appointment_linked_at, pg_catalog.now())
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
        FROM (
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
            FROM (
                SELECT u.id, pg_catalog.bool_or(u.lost) AS lost_one
                FROM (
                    SELECT x.id, FALSE AS lost FROM pg_catalog.unnest(call_ids) AS x (id)
                    UNION ALL
                    SELECT x.id, TRUE AS lost FROM pg_catalog.unnest(lost_from) AS x (id)
                ) AS u
                GROUP BY u.id
                HAVING NOT pg_catalog.bool_and(u.lost)  -- lost_from is a subset of call_ids
            ) AS t
            INNER JOIN public.calls AS c ON t.id = c.id
        ) AS s
    ) AS d
    WHERE (
        d.appointment_made, d.appointment_link_status, d.appointment_linked_at,
        d.session_outcome, d.booking_failed, d.booking_confirmed
    ) IS DISTINCT FROM (
        d.has_active, d.new_link_status, d.new_linked_at,
        d.new_outcome, d.new_failed, d.new_confirmed
    );
$$;

-- I3, I4: correct the booking flags of the given calls from their active appointments
-- (guard.call_flags_to_correct derives them). Every path that can unbook a call derives its flags
-- here (a new appointment only ever books: see sync_flags_after_appointment_insert).
--   lost_from     calls that just lost an active appointment (see guard.call_flags_to_correct)
--   audit_reason  the calls were written by someone else (the application, a legacy load): each
--                 correction is audited with before and after, and one alert per company raised
--   check_only    count the calls that would change, change nothing
-- Three statements for three modes, not one with every mode's branches: a one-row appointment
-- cancel or delete (audit_reason NULL, the everyday path) then runs a plain UPDATE and never
-- initialises the audit and alert inserts it would not use (bench/instructions.py).
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

    IF check_only THEN
        SELECT count(*) INTO differing FROM guard.call_flags_to_correct(call_ids, lost_from);
        RETURN differing;
    END IF;

    IF audit_reason IS NULL THEN
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
                ELSE now()
            END
        FROM guard.call_flags_to_correct(call_ids, lost_from) AS f
        WHERE c.id = f.id;
        GET DIAGNOSTICS differing = ROW_COUNT;
        RETURN differing;
    END IF;

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
            updated_at = CASE  -- as above: a phantom's grace period is not restarted
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(call_ids, lost_from) AS f
        WHERE c.id = f.id
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
-- The changed rows are found by grouping both transition tables together on what matters (the
-- old version counts -1, the new one +1): an unchanged row's two versions cancel out, a changed
-- row leaves its old side (-1) and its new side (+1). One scan of each table and one hash
-- aggregate: cheaper than the two EXCEPTs this replaced, and never a join of the transition
-- tables, whose plan, cached from a one-row firing, made a big statement quadratic.
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    -- One statement finds the calls and derives their flags: a one-row update pays for one
    -- executor run here, not two.
    PERFORM guard.refresh_call_flags(touched.calls, lost_from => touched.lost)
    FROM (
        SELECT
            array_agg(DISTINCT v.call_id) AS calls,
            coalesce(
                array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}'
            ) AS lost
        FROM (
            SELECT u.call_id, u.active, sum(u.side) AS side
            FROM (
                SELECT
                    o.id,
                    o.call_id,
                    o.company_id,
                    (o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled') AS active,
                    -1 AS side
                FROM old_rows AS o
                UNION ALL
                SELECT
                    n.id,
                    n.call_id,
                    n.company_id,
                    (n.deleted_at IS NULL AND n.status IS DISTINCT FROM 'cancelled') AS active,
                    1 AS side
                FROM new_rows AS n
            ) AS u
            GROUP BY u.id, u.call_id, u.company_id, u.active
            HAVING sum(u.side) <> 0
        ) AS v
        WHERE v.call_id IS NOT NULL
    ) AS touched
    WHERE touched.calls IS NOT NULL;
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

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: calls whose booking flags the writer changed
-- are checked against their appointments. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already. A changed row is a new version that no old version matches on the flags:
-- both transition tables grouped together (old -1, new +1), never joined (see
-- guard.sync_flags_after_appointment_update); one hash aggregate, cheaper than EXCEPT for the
-- application's everyday one-row update of a call.
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

-- Ownership and privileges of every Booking Guard object, from guard.role_names (see
-- guard.apply_grants). A DO block, not a SELECT: yoyo prints the rows a migration's SELECT
-- returns.
DO $$
BEGIN
    PERFORM guard.apply_grants();
END;
$$;
