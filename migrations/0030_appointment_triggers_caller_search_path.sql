-- 0030_appointment_triggers_caller_search_path (written by `make migration`, reviewed): the
-- appointment update and delete triggers (guard.sync_flags_after_appointment_update, _delete)
-- lose SET search_path = pg_catalog and qualify every function name instead. Their UPDATE of
-- calls fires guard.correct_flags_after_call_update (no SET clause since 0028), whose cached plans
-- remember the search_path they were made under: fired under pg_catalog here and under the
-- application's path on the application's own writes, they were made again twice per cancel,
-- soft delete, delete or move (bench/workload.py --instructions: 2,539k -> 2,473k instructions
-- per booking lifecycle). They keep SET plan_cache_mode = force_generic_plan (custom plans cost
-- far more, measured the same way).
-- Locks: none on tables (CREATE OR REPLACE FUNCTION only).

-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: every call of a deleted active
-- appointment lost one, and keeps its flags only while another active one remains.
-- Lock the calls first, in id order, and look at their appointments in the next statement: under
-- READ COMMITTED its snapshot sees every appointment committed by a writer we waited for, so
-- concurrent writers cannot leave a call with flags derived from a stale view
-- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking. The same
-- two statements end guard.sync_flags_after_appointment_update.
-- SECURITY INVOKER: the writer may update calls itself (the application may), so no definer call
-- and no tenant lookup on this everyday path (a nested SECURITY DEFINER call with its SET clauses
-- cost a one-row delete about 90k instructions, bench/instructions.py).
-- No search_path of its own, every function name qualified (see "Trigger functions without SET
-- clauses" in docs/security.md): its UPDATE of calls fires the calls trigger
-- guard.correct_flags_after_call_update, which runs under whatever search_path is in force. With
-- search_path = pg_catalog here and the application's path everywhere else, the plans cached in
-- that trigger were made again after every such firing and again at the next write of the
-- application (about 66k instructions per booking lifecycle, bench/workload.py --instructions).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
-- The lock and the UPDATE take the call ids as a parameter: custom plans would be planned again
-- on every firing, and PostgreSQL kept choosing them (bench/instructions.py).
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    lost bigint[];
BEGIN
    lost := ARRAY(
        SELECT o.call_id
        FROM old_rows AS o
        WHERE o.call_id IS NOT NULL AND guard.is_active_appointment(o.status, o.deleted_at)
    );
    IF pg_catalog.cardinality(lost) = 0 THEN
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
            ELSE pg_catalog.now()
        END
    FROM guard.call_flags_to_correct(lost, TRUE) AS f
    WHERE c.ctid = f.row_id;
    RETURN NULL;
END;
$$;

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on appointments: the calls on both sides of every
-- appointment whose call, company or activeness (status, soft delete) changed get their flags
-- derived again.
-- The changed rows are found by grouping both transition tables together on what matters (the
-- old version counts -1, the new one +1): an unchanged row's two versions cancel out, a changed
-- row leaves its old side (-1) and its new side (+1). One scan of each table and one hash
-- aggregate, never a join of the transition tables, whose plan, cached from a one-row firing,
-- made a big statement quadratic. A call with an active old side lost an appointment; every
-- touched call is derived (a call may gain one), the lost ones first: deriving a call again
-- without the lost mark changes nothing (guard.call_flags_to_correct).
-- Then the lock and the derivation of guard.sync_flags_after_appointment_delete (see there why
-- in two statements, in this order, with invoker rights).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_update()
RETURNS trigger
LANGUAGE plpgsql
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    touched bigint[];
    lost bigint[];
BEGIN
    SELECT
        coalesce(pg_catalog.array_agg(DISTINCT v.call_id), '{}'),
        coalesce(
            pg_catalog.array_agg(DISTINCT v.call_id) FILTER (WHERE v.side < 0 AND v.active), '{}'
        )
    INTO touched, lost
    FROM (
        SELECT u.call_id, u.active, pg_catalog.sum(u.side) AS side
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
        HAVING pg_catalog.sum(u.side) <> 0
    ) AS v
    WHERE v.call_id IS NOT NULL;
    IF pg_catalog.cardinality(touched) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM FROM public.calls AS c WHERE c.id = ANY (touched) ORDER BY c.id FOR NO KEY UPDATE;
    IF pg_catalog.cardinality(lost) > 0 THEN
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
                ELSE pg_catalog.now()
            END
        FROM guard.call_flags_to_correct(lost, TRUE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    -- lost is a subset of touched: equal sizes mean nothing is left to derive.
    IF pg_catalog.cardinality(touched) > pg_catalog.cardinality(lost) THEN
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
                ELSE pg_catalog.now()
            END
        FROM guard.call_flags_to_correct(touched, FALSE) AS f
        WHERE c.ctid = f.row_id;
    END IF;
    RETURN NULL;
END;
$$;
