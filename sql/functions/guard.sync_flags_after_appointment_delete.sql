-- I3, AFTER DELETE ... FOR EACH STATEMENT on appointments: every call of a deleted active
-- appointment lost one, and keeps its flags only while another active one remains. The everyday
-- one-row delete derives its call through guard.sync_one_call_flags, a bigger statement its calls
-- through guard.sync_call_flags. Both lock the calls first (in id order) and look at their
-- appointments in the next statement: under READ COMMITTED its snapshot sees every appointment
-- committed by a writer we waited for, so concurrent writers cannot leave a call with flags
-- derived from a stale view (tests/db/test_concurrency.py), and the id order keeps two such
-- writers from deadlocking.
-- SECURITY INVOKER: the writer may update calls itself (the application may), so no definer call
-- and no tenant lookup on this everyday path (a nested SECURITY DEFINER call with its SET clauses
-- was most of a one-row delete's cost: docs/invariants.md, "Measured reasons for the shapes").
-- No SET clause, every function name qualified (see "Trigger functions without SET clauses" in
-- docs/security.md): the UPDATE of calls it leads to fires the calls trigger
-- guard.check_flag_write, which runs under whatever search_path is in force. With
-- search_path = pg_catalog here and the application's path everywhere else, the plans cached in
-- that trigger were made again after every such firing and again at the next write of the
-- application (docs/security.md, "Trigger functions without SET clauses").
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    lost bigint[];
BEGIN
    lost := ARRAY(
        SELECT o.call_id
        FROM old_rows AS o
        WHERE o.call_id IS NOT NULL AND guard.is_active_appointment(o.status, o.deleted_at)
    );
    IF pg_catalog.cardinality(lost) < 2 THEN
        -- none (lost[1] is NULL: a no-op), or the everyday one-row delete. Called in an IF, not
        -- by PERFORM: a PERFORM is a query, with an executor to start.
        IF guard.sync_one_call_flags(lost[1], TRUE) THEN
            -- derived; there is nothing more to do either way
        END IF;
    ELSE
        PERFORM guard.sync_call_flags(lost, '{}');
    END IF;
    RETURN NULL;
END;
$$;
