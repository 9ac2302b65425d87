-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: every call of a deleted active
-- appointment lost one, and keeps its flags only while another active one remains.
-- Lock the calls first, in id order, and look at their appointments in the next statement: under
-- READ COMMITTED its snapshot sees every appointment committed by a writer we waited for, so
-- concurrent writers cannot leave a call with flags derived from a stale view
-- (tests/db/test_concurrency.py). The id order keeps two such writers from deadlocking. The same
-- two statements end guard.sync_flags_after_appointment_update.
-- SECURITY INVOKER: the writer may update calls itself (the application may), so no definer call
-- and no tenant lookup on this everyday path (a nested SECURITY DEFINER call with its SET clauses
-- was most of a one-row delete's cost: docs/invariants.md, "Measured reasons for the shapes").
-- No search_path of its own, every function name qualified (see "Trigger functions without SET
-- clauses" in docs/security.md): its UPDATE of calls fires the calls trigger
-- guard.check_flag_write, which runs under whatever search_path is in force. With
-- search_path = pg_catalog here and the application's path everywhere else, the plans cached in
-- that trigger were made again after every such firing and again at the next write of the
-- application (docs/security.md, "Trigger functions without SET clauses").
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
