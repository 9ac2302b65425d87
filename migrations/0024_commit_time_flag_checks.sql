-- The everyday one-row paths of a booking application, and no false corrections under load
-- (bench/workload.py, bench/instructions.py). Same invariant, same locks on the booking rows.
-- - An application's write of booking flags that contradicts the appointments is judged when its
--   transaction commits, not at the end of its statement: writing the call's flags first and its
--   appointment second is a legitimate transaction, which was corrected, audited and alerted
--   (the company's alert row, bumped by every such booking, made concurrent writers queue) for a
--   state nobody else ever saw. A write that agrees with the appointments costs one check; one
--   that does not is recorded in guard.flag_checks_at_commit, whose deferred constraint trigger
--   (guard.check_flags_at_commit) corrects or, in reject mode, refuses it at commit. The calls
--   triggers' functions become SECURITY DEFINER to record it; guard.correct_call_writes goes.
--   Only a statement that writes a flag column is checked at all: a BEFORE statement trigger
--   with that column list marks it (guard.note_flag_write), so the everyday update of a call's
--   status no longer pairs both transition tables.
-- - guard.call_flags_to_correct keeps has_active in a subquery (OFFSET 0): the planner had
--   flattened it and copied its EXISTS into 14 expressions, initialised for every statement. It
--   takes one array of calls and whether they just lost an appointment.
-- - The appointment update and delete triggers derive flags in place, with invoker rights,
--   without a SECURITY DEFINER call; refresh_call_flags keeps the audited corrections (commit-time
--   checks, reconcile, `guard db validate`) and is no longer granted to the application.
-- - guard_calls_normalise_direction fires on insert and on updates that write the direction; the
--   legacy-row triggers exist only while their CHECK is NOT VALID (guard.sync_legacy_triggers,
--   also run by `guard db validate`): their WHEN clauses were compiled for every statement that
--   updates calls.
-- Locks: CREATE (OR REPLACE) TRIGGER takes SHARE ROW EXCLUSIVE on public.calls, DROP TRIGGER (a
-- legacy-row trigger) ACCESS EXCLUSIVE, each for an instant (catalog only), under the migrator's
-- lock_timeout and retries.

-- Its callers are Booking Guard's own functions, all replaced here in the same transaction.
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.call_flags_to_correct(bigint[], bigint[]);

-- I3, I4: the calls among call_ids whose booking flags differ from what their active appointments
-- say, with the flags they have (old_*) and the flags they should have (new_*). The one
-- definition of the derived flags: every statement that derives, corrects or checks them reads it.
--   lost  the calls just lost an active appointment (an appointment trigger says so): with none
--         left, a booked outcome becomes appointment_cancelled and the booking is no longer
--         confirmed. Deriving a call with lost = FALSE after it was derived with lost = TRUE
--         changes nothing, so a caller may pass a call in both sets, the lost set first.
--   row_id the version of the call row that was read, for the caller's UPDATE to join on (a TID
--         scan instead of a second index lookup of the same row; the caller holds the row lock).
-- An appointment is active unless it is cancelled or soft-deleted, and it counts only for a call
-- of its own company (a cross-tenant link on an adopted database books nothing). A booked
-- outcome without an appointment is left alone: it is legitimate during the grace period
-- (detection's job).
-- One SELECT, LANGUAGE sql, STABLE, no SET clause, not SECURITY DEFINER: the planner inlines it
-- into the statement that calls it, so it costs what the same SQL written in place costs.
-- OFFSET 0 keeps the inner query a subquery: without it the planner flattens it and copies the
-- EXISTS into every expression that reads has_active (14 copies, each one initialised for every
-- statement and probed per row: most of a one-row cancel's cost, bench/instructions.py).
-- `c.id = ANY (call_ids)` is an index condition (the array is sorted once and each id looked up),
-- not a filter searched per row.
CREATE FUNCTION guard.call_flags_to_correct(call_ids bigint[], lost boolean)
RETURNS TABLE (
    row_id tid,
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
        d.ctid,
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
                WHEN lost AND s.session_outcome = 'appointment_booked' THEN 'appointment_cancelled'
                ELSE s.session_outcome
            END AS new_outcome,
            s.booking_failed AND NOT s.has_active AS new_failed,
            s.booking_confirmed AND NOT (lost AND NOT s.has_active) AS new_confirmed
        FROM (
            SELECT
                c.ctid,
                c.id,
                c.company_id,
                c.appointment_made,
                c.appointment_link_status,
                c.appointment_linked_at,
                c.session_outcome,
                c.booking_failed,
                c.booking_confirmed,
                EXISTS (
                    SELECT
                    FROM public.appointments AS a
                    WHERE
                        a.call_id = c.id
                        AND a.company_id = c.company_id
                        AND a.deleted_at IS NULL
                        AND a.status IS DISTINCT FROM 'cancelled'
                ) AS has_active
            FROM public.calls AS c
            WHERE c.id = ANY (call_ids)
            OFFSET 0
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

-- Called by the triggers this migration replaces, and by reconcile with named arguments that the
-- new signature takes too; the application's grant on it goes with it.
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.refresh_call_flags(bigint[], bigint[], text, boolean);

-- I3, I4: correct the booking flags of calls that someone else wrote (the application's writes
-- checked at commit, reconcile, `guard db validate`), from their active appointments
-- (guard.call_flags_to_correct derives them). Each correction is audited with before and after
-- and one alert per company is raised or bumped. Returns the number of calls corrected.
-- The appointment triggers derive flags themselves (guard.sync_flags_after_appointment_*):
-- nothing to audit there.
-- SECURITY DEFINER: it writes the correction audit and alerts, which the application may not
-- write itself; it is not granted to the application (its callers are definer functions and
-- the owner's jobs).
CREATE FUNCTION guard.refresh_call_flags(call_ids bigint[], audit_reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compiles this function's large statement for longer than it runs (bench/triggers.py:
-- a 10 000-row delete took 1.7 s with JIT, 0.3 s without).
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
                ELSE now()
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

    SELECT count(*) INTO corrected FROM changed;
    RETURN corrected;
END;
$$;

-- I3: booking flags an application wrote that contradicted the appointments when written, to be
-- checked again when the writing transaction commits (guard.check_flags_at_commit). A row lives
-- only inside its transaction: it is inserted by the calls triggers and deleted at commit,
-- so no other session ever sees one.
-- UNLOGGED: nothing here must survive a crash (an interrupted transaction takes its rows with
-- it), so its writes skip the WAL.
CREATE UNLOGGED TABLE guard.flag_checks_at_commit (
    xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
    call_ids bigint[] NOT NULL,
    reason text NOT NULL
);

-- I3, the deferred constraint trigger on guard.flag_checks_at_commit: at commit, the calls whose
-- booking flags this transaction wrote against its appointments are checked again. Flags the
-- transaction made true by then (it inserted the appointment after writing the call) pass
-- silently; the rest are corrected, audited and alerted (guard.refresh_call_flags) in the rule's
-- correct mode, or fail the commit (23514) in reject mode. A disabled rule lets them stand
-- (detection still reports them).
-- The first firing takes every row of the transaction (one set-based pass, whatever the number
-- of statements that wrote flags); later firings of the same commit find nothing.
-- SECURITY DEFINER: it reads and deletes guard.flag_checks_at_commit and writes the audit
-- through refresh_call_flags, none of which the application may do itself.
CREATE FUNCTION guard.check_flags_at_commit()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    call_ids bigint[];
    reasons text;
    rule_mode text;
    contradicting bigint[];
BEGIN
    WITH taken AS (
        DELETE FROM guard.flag_checks_at_commit AS p
        WHERE p.xact = pg_current_xact_id()
        RETURNING p.call_ids, p.reason
    )

    SELECT
        array_agg(DISTINCT x.id ORDER BY x.id),
        string_agg(DISTINCT t.reason, '; ' ORDER BY t.reason)
    INTO call_ids, reasons
    FROM taken AS t CROSS JOIN LATERAL unnest(t.call_ids) AS x (id);
    IF call_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- The transaction wrote these calls, so it holds their row locks (or created them): no
    -- other writer can change what they derive from before it commits.
    contradicting := ARRAY(SELECT f.id FROM guard.call_flags_to_correct(call_ids, FALSE) AS f);
    IF cardinality(contradicting) = 0 THEN
        RETURN NULL;
    END IF;
    SELECT r.mode INTO rule_mode
    FROM guard.rules AS r
    WHERE r.id = 'I3_appointment_flags' AND r.enabled;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF rule_mode = 'reject' THEN
        RAISE EXCEPTION 'booking flags of % call(s) contradict their appointments',
            cardinality(contradicting)
            USING
                ERRCODE = 'check_violation',
                HINT = 'appointment_made and the appointment link are derived from the '
                || 'appointments table (rule I3_appointment_flags is in reject mode); '
                || 'checked when the transaction commits';
    END IF;
    PERFORM guard.refresh_call_flags(contradicting, reasons);
    RETURN NULL;
END;
$$;

-- I3: the application's contradicting writes of booking flags are judged when its transaction
-- commits (guard.check_flags_at_commit). `SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE`
-- judges them at the end of each statement instead.
CREATE CONSTRAINT TRIGGER guard_flag_checks_at_commit
AFTER INSERT ON guard.flag_checks_at_commit
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION guard.check_flags_at_commit();

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
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_delete()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
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
        WHERE o.call_id IS NOT NULL AND o.deleted_at IS NULL AND o.status IS DISTINCT FROM 'cancelled'
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
SET search_path = pg_catalog
-- See guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
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
$$;

-- I3, AFTER INSERT ... FOR EACH STATEMENT on calls: a new call cannot have appointments yet, so
-- one that claims a made or linked booking contradicts them now. The application may still insert
-- the appointment in the same transaction (the call first, then its appointment), so the claim is
-- judged when the transaction commits (guard.check_flags_at_commit): corrected there, or refused
-- in reject mode.
-- SECURITY DEFINER: it records the calls in guard.flag_checks_at_commit, which the application
-- may not write itself.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claiming_calls bigint[];
BEGIN
    claiming_calls := ARRAY(
        SELECT n.id FROM new_rows AS n WHERE n.appointment_made OR n.appointment_link_status = 'linked'
    );
    -- The INSERT runs only when there is something to record: a statement that is never run is
    -- never initialised (the everyday insert of a call claims nothing).
    IF cardinality(claiming_calls) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, reason)
        VALUES (claiming_calls, 'a new call claimed a booking its appointments do not show');
    END IF;
    RETURN NULL;
END;
$$;

-- I3, BEFORE UPDATE OF the booking flags ... FOR EACH STATEMENT on calls: marks, for the rest of
-- this statement, that the application wrote booking flags, so that the statement's AFTER trigger
-- (guard.correct_flags_after_call_update) checks its rows. A statement that writes no flag column
-- (the application's everyday update of a call's status) does not fire this trigger, and its
-- AFTER trigger returns at once: before, it paired both transition tables to find changed flags,
-- about 90k instructions for every update of a call (bench/instructions.py).
-- The mark is a setting local to the transaction (booking_guard.i3_flags_written): a BEFORE
-- trigger always runs before the AFTER trigger of the same statement, which clears it. A session
-- can set it too. Setting it only makes a statement check more; clearing it inside the very
-- statement that writes flags (set_config in its SET list) skips the write-time check, which no
-- application does by mistake, and guard.run_detection still reports the contradiction (I3) on
-- its next run.
-- No SET clause: nothing here is looked up by name but pg_catalog.set_config.
CREATE FUNCTION guard.note_flag_write()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'on', TRUE);
    RETURN NULL;
END;
$$;

-- I3: a statement that writes a booking flag is marked for the calls-side check
-- (guard.note_flag_write). Depth 0 only: Booking Guard's own updates of the flags are derived.
CREATE TRIGGER guard_calls_note_flag_write
BEFORE UPDATE OF appointment_made,
appointment_link_status,
appointment_linked_at,
session_outcome,
booking_failed ON public.calls
FOR EACH STATEMENT
WHEN (pg_trigger_depth() = 0)
EXECUTE FUNCTION guard.note_flag_write();

-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: the calls of a statement that wrote booking
-- flags (marked by guard.note_flag_write, the BEFORE trigger on those columns) are checked against
-- their appointments. A statement that wrote no flag column ends at the first line. Writes by
-- Booking Guard's own triggers (depth > 1) are derived already.
-- A write that agrees with the appointments (the everyday case: the application sets the flags
-- after writing the appointment) ends here. One that contradicts them may be a state the
-- transaction has not finished (the call's flags first, then its appointment), so it is judged
-- when the transaction commits (guard.check_flags_at_commit): corrected there, or refused in
-- reject mode.
-- SECURITY DEFINER: it records the calls in guard.flag_checks_at_commit, which the application
-- may not write itself.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The check takes the call ids as a parameter: see guard.sync_flags_after_appointment_delete.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    written_calls bigint[];
    contradicting bigint[];
BEGIN
    IF
        pg_trigger_depth() > 1
        OR current_setting('booking_guard.i3_flags_written', TRUE) IS DISTINCT FROM 'on'
    THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('booking_guard.i3_flags_written', 'off', TRUE);
    written_calls := ARRAY(SELECT n.id FROM new_rows AS n);
    IF cardinality(written_calls) = 0 THEN
        RETURN NULL;
    END IF;
    contradicting := ARRAY(
        SELECT f.id FROM guard.call_flags_to_correct(written_calls, FALSE) AS f
    );
    IF cardinality(contradicting) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, reason)
        VALUES (contradicting, 'an update wrote booking flags that contradict the appointments');
    END IF;
    RETURN NULL;
END;
$$;

-- I3: the check reads only the new row versions: the old ones are no longer captured.
CREATE OR REPLACE TRIGGER guard_calls_correct_flags_update
AFTER UPDATE ON public.calls
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION guard.correct_flags_after_call_update();

-- Only the calls triggers called it; they record contradicting writes themselves now.
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.correct_call_writes(bigint[], text);

-- I1: a missing direction becomes inbound before the row is stored, on insert and on an update
-- that writes the direction. An update of other columns cannot break the (validated) CHECK; on an
-- adopted database whose CHECK is still NOT VALID, guard_calls_normalise_legacy_direction covers
-- those updates until `guard db validate` (guard.sync_legacy_triggers).
CREATE OR REPLACE TRIGGER guard_calls_normalise_direction
BEFORE INSERT OR UPDATE OF direction ON public.calls
FOR EACH ROW
WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
EXECUTE FUNCTION guard.normalise_call_direction();

-- I1, I2: the legacy-row triggers exist exactly while their CHECK is NOT VALID: created when
-- missing, dropped once the CHECK is valid. Returns what it did (trigger, created | dropped).
-- On an adopted database the CHECKs are NOT VALID until `guard db validate` has reconciled the
-- old rows, yet PostgreSQL checks every new row version against them: an update of an old row's
-- status would fail. While that lasts, these triggers normalise a row that would break a CHECK on
-- any update, whatever columns it sets, as the reconciler would (a missing direction becomes
-- inbound, the customer link follows customer_id); rows the reconciler leaves for a person (an
-- unknown direction, a confidence out of range) still fail, as they do on insert. Once the CHECK
-- is valid no stored row can break it, and such a trigger only costs: PostgreSQL compiles its
-- WHEN clause again for every statement that updates calls (about 60k instructions each,
-- bench/instructions.py). Run by the migrations and by `guard db validate`.
-- Invoker rights: creating and dropping a trigger needs the table's owner, the migrating user.
CREATE FUNCTION guard.sync_legacy_triggers()
RETURNS TABLE (trigger_name text, action text)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    legacy record;
BEGIN
    FOR legacy IN
        SELECT
            m.trigger_name,
            k.convalidated AS check_valid,
            EXISTS (
                SELECT FROM pg_trigger AS t
                WHERE t.tgrelid = 'public.calls'::regclass AND t.tgname = m.trigger_name
            ) AS present
        FROM (
            VALUES
            ('guard_calls_normalise_legacy_direction', 'guard_calls_direction_check'),
            ('guard_calls_normalise_legacy_link', 'guard_calls_customer_link_check')
        ) AS m (trigger_name, constraint_name)
        INNER JOIN pg_constraint AS k
            ON k.conrelid = 'public.calls'::regclass AND k.conname = m.constraint_name
        ORDER BY m.trigger_name
    LOOP
        trigger_name := legacy.trigger_name;
        IF legacy.check_valid AND legacy.present THEN
            EXECUTE format('DROP TRIGGER %I ON public.calls', legacy.trigger_name);
            action := 'dropped';
            RETURN NEXT;
        ELSIF NOT legacy.check_valid AND NOT legacy.present THEN
            IF legacy.trigger_name = 'guard_calls_normalise_legacy_direction' THEN
                CREATE TRIGGER guard_calls_normalise_legacy_direction
                BEFORE UPDATE ON public.calls
                FOR EACH ROW
                WHEN (new.direction IS NULL OR new.direction NOT IN ('inbound', 'outbound'))
                EXECUTE FUNCTION guard.normalise_call_direction();
            ELSE
                -- The WHEN clause is the CHECK's condition.
                CREATE TRIGGER guard_calls_normalise_legacy_link
                BEFORE UPDATE ON public.calls
                FOR EACH ROW
                WHEN (
                    NOT coalesce(
                        CASE
                            WHEN new.customer_id IS NOT NULL
                                THEN
                                    new.customer_link_status = 'linked'
                                    AND new.customer_linked_at IS NOT NULL
                                    AND new.customer_link_method IS NOT NULL
                                    AND new.customer_link_confidence IS NOT NULL
                            ELSE new.customer_link_status IN ('unlinked', 'anonymous')
                        END,
                        FALSE
                    )
                )
                EXECUTE FUNCTION guard.normalise_customer_link();
            END IF;
            action := 'created';
            RETURN NEXT;
        END IF;
    END LOOP;
END;
$$;

-- The legacy-row triggers exist while their CHECK is NOT VALID, on adopted databases until
-- `guard db validate`: guard_calls_normalise_legacy_direction takes over from the direction
-- normaliser's any-update firing; a database whose CHECKs are valid keeps none.
DO $$
BEGIN
    PERFORM guard.sync_legacy_triggers();
END;
$$;

-- (Re)apply Booking Guard's ownership and privileges from guard.role_names: every object in
-- schema guard is handed to the owner role, PUBLIC loses EXECUTE on the guard functions, and the
-- application, reporting and reviewer roles get exactly what docs/security.md lists. Every
-- migration that creates or re-creates an object in schema guard ends with a DO block that
-- runs PERFORM guard.apply_grants(), so ownership and grants survive DROP and CREATE (CREATE OR
-- REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's own grants away
-- (guard db verify reports those). Run by the migrating user, a member of the owner role.
CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    owner_role text := guard.role('owner');
    app_role text := guard.role('application');
    reader text;
    obj record;
    -- public.calls as reporting may read it: every column Booking Guard knows but the phone numbers
    calls_columns text;
    appointments_columns text;
BEGIN
    -- Ownership: the schema and everything in it. Sequences of identity columns and row types of
    -- tables follow their table.
    IF (SELECT n.nspowner::regrole::text FROM pg_namespace AS n WHERE n.nspname = 'guard')
        IS DISTINCT FROM quote_ident(owner_role) THEN
        EXECUTE format('ALTER SCHEMA guard OWNER TO %I', owner_role);
    END IF;
    FOR obj IN
        SELECT
            CASE c.relkind
                WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE'
                WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE'
            END AS object_type,
            c.oid::regclass::text AS object_name
        FROM pg_class AS c
        WHERE
            c.relnamespace = 'guard'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND c.relowner <> to_regrole(quote_ident(owner_role))
            AND NOT EXISTS (
                SELECT FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            )
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text
        FROM pg_proc AS p
        WHERE p.pronamespace = 'guard'::regnamespace AND p.proowner <> to_regrole(quote_ident(owner_role))
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text
        FROM pg_type AS t
        LEFT JOIN pg_class AS r ON t.typrelid = r.oid
        WHERE
            t.typnamespace = 'guard'::regnamespace
            AND t.typowner <> to_regrole(quote_ident(owner_role))
            AND t.typelem = 0
            AND (t.typrelid = 0 OR r.relkind = 'c')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.object_type, obj.object_name, owner_role);
    END LOOP;

    -- Nothing for PUBLIC: a function is EXECUTE-able by PUBLIC unless revoked.
    REVOKE ALL ON SCHEMA guard FROM PUBLIC;
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA guard FROM PUBLIC;
    -- Functions the owner role creates later start without PUBLIC's EXECUTE too. (A per-schema
    -- default cannot take away the global default's EXECUTE, hence no IN SCHEMA.)
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', owner_role
    );

    -- The owner role: what its SECURITY DEFINER functions, detection, reconciliation and the
    -- jobs read and correct on the application's tables.
    EXECUTE format('GRANT SELECT, UPDATE ON TABLE public.calls, public.appointments TO %I', owner_role);
    EXECUTE format('GRANT SELECT ON TABLE public.companies TO %I', owner_role);

    -- The application: its own booking tables, the settings its triggers read, and the
    -- functions it calls (directly, or through the triggers on calls and appointments).
    EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', app_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.companies, public.customers,'
        ' public.services, public.calls, public.appointments TO %I',
        app_role
    );
    EXECUTE format('GRANT SELECT ON TABLE guard.settings, guard.rules TO %I', app_role);
    FOR obj IN
        SELECT f.signature::regprocedure::text AS object_name
        FROM unnest(ARRAY[
            'guard.setting(text)',
            'guard.current_company()',
            'guard.validate_booking(bigint, bigint, text)',
            'guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)',
            'guard.rollback_booking(bigint, text, jsonb)',
            'guard.check_call(bigint)',
            -- the derived booking flags, read in place by the appointment triggers (invoker
            -- rights: they update calls as the application would)
            'guard.call_flags_to_correct(bigint[], boolean)',
            -- the booking journal (guard.booking_attempts), written only through these
            'guard.begin_booking_attempt(bigint, bigint)',
            'guard.complete_booking_attempt(text, bigint, text)',
            'guard.fail_booking_attempt(text, text, jsonb)',
            'guard.unsettled_booking_attempts(integer, integer)',
            -- breaker history, written behind by the application's breakers (they may not
            -- write guard.breaker_events / guard.breaker_state themselves)
            'guard.record_breaker_transitions(jsonb)'
        ]) AS f (signature)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, app_role);
    END LOOP;

    -- Reporting and reviewer: read-only, the BI views and, because those views are
    -- security_invoker, the tables behind them (row-level security limits both to the companies
    -- bound to the role, guard.tenant_bindings);
    -- never the raw phone numbers.
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO calls_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'retell_call_id', 'status', 'direction', 'customer_id',
        'customer_link_status', 'customer_link_method', 'customer_link_confidence',
        'customer_linked_at', 'session_outcome', 'appointment_made', 'appointment_link_status',
        'appointment_linked_at', 'booking_id', 'booking_details', 'booking_confirmed',
        'booking_failed', 'booking_failure_reason', 'requires_manual_processing', 'created_at',
        'updated_at'
    ]) WITH ORDINALITY AS col (name, ord);
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO appointments_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'call_id', 'customer_id', 'service_id', 'calcom_v2_booking_id',
        'source', 'status', 'starts_at', 'ends_at', 'created_at', 'updated_at', 'deleted_at'
    ]) WITH ORDINALITY AS col (name, ord);
    FOREACH reader IN ARRAY ARRAY[guard.role('reporting'), guard.role('reviewer')] LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', reader);
        FOR obj IN
            SELECT c.oid::regclass::text AS object_name
            FROM pg_class AS c
            WHERE
                c.relnamespace = 'guard'::regnamespace
                AND (
                    (c.relkind = 'v' AND c.relname LIKE 'check\_%')
                    OR c.relname IN (
                        'daily_report_view', 'kpis', 'validation_latency_daily', 'job_status',
                        'calls_report', 'alerts', 'review_items', 'daily_reports',
                        'correction_audit', 'validation_metrics', 'breaker_events', 'settings',
                        'jobs', 'job_runs',
                        -- read by the security_invoker view check_booking_outcome_unknown
                        'booking_attempts',
                        -- tenants: guard.visible_companies reads the bindings with the
                        -- reader's rights (a policy shows each role only its own)
                        'tenant_bindings'
                    )
                )
            ORDER BY 1
        LOOP
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj.object_name, reader);
        END LOOP;
        EXECUTE format('GRANT SELECT (id, name) ON TABLE public.companies TO %I', reader);
        EXECUTE format('GRANT SELECT (%s) ON TABLE public.calls TO %I', calls_columns, reader);
        EXECUTE format(
            'GRANT SELECT (%s) ON TABLE public.appointments TO %I', appointments_columns, reader
        );
        EXECUTE format(
            'GRANT EXECUTE ON FUNCTION guard.current_company(), guard.setting(text),'
            ' guard.mask_phone(text) TO %I',
            reader
        );
        -- tenants: the row-level security policies and guard.calls_report call it as the reader
        -- (found in the catalog, like the relations above: nothing to grant before it exists)
        FOR obj IN
            SELECT p.oid::regprocedure::text AS object_name
            FROM pg_proc AS p
            WHERE p.pronamespace = 'guard'::regnamespace AND p.proname = 'visible_companies'
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, reader);
        END LOOP;
    END LOOP;

    -- Reviewer: works the review queue of its companies (review_claim and review_close run with
    -- its rights, under row-level security). claimed_by and closed_by are its free-text labels;
    -- the login is recorded in claimed_by_role and closed_by_role by a trigger, not granted.
    EXECUTE format(
        'GRANT UPDATE (status, claimed_by, claimed_at, closed_by, closed_at, note, false_positive)'
        ' ON TABLE guard.review_items TO %I',
        guard.role('reviewer')
    );
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION guard.review_claim(text, integer),'
        ' guard.review_close(bigint, text, text, text, boolean) TO %I',
        guard.role('reviewer')
    );
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
