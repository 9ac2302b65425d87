-- I3, AFTER UPDATE OF the booking flags ... FOR EACH ROW on calls: a call whose booking flags the
-- application wrote is compared with what its appointments say. An update that writes no flag
-- column (the everyday update of a call's status) does not fire it; a new call's claim is
-- guard.check_flag_claim's. Writes by Booking Guard's own triggers (depth > 1) are derived
-- already.
-- A write that leaves every value the rule reads as it was (guard.call_flags_contradict: made,
-- link status, whether linked_at is set, outcome, failed) ends at once: it cannot make the call
-- contradict its appointments, since the stored version was derived by the appointment triggers
-- or judged when it was written (a contradiction already pending in this transaction stays
-- recorded). That is the everyday flag write: the application restates the flags the booking's
-- appointment insert derived a moment earlier. A stored contradiction such a write leaves in
-- place (legacy data, a rule that was off) is detection's (flags_contradict_appointments), as it
-- was before the write.
-- linked_at counts only while made is not FALSE: the rule reads it only with an active
-- appointment, and a call whose made stays FALSE contradicts one whatever its linked_at (no
-- check of detection reads it either). So the everyday unbook (the application clears linked_at
-- after a cancel or delete derived the rest) is a restatement too: no index read, no queue row
-- and no NOTIFY, about 90k instructions of that transaction (bench/workload.py --instructions).
-- A write that agrees with the appointments ends after one index read. One that contradicts them
-- may be a state the transaction has not finished (the call's flags first, then its
-- appointment), so it is recorded (guard.flag_checks_at_commit) and judged when the transaction
-- commits (guard.check_flags_at_commit): corrected there, or refused in reject mode.
-- AFTER, not in the BEFORE ROW normaliser: a pending check recorded before the row is written
-- would be judged, under SET CONSTRAINTS ... IMMEDIATE, on the version before the write.
-- Row-level, one index read and a comparison (guard.call_flags_contradict, proven equal to the
-- derivation rule by tests/db/test_flag_rule.py): a statement trigger paid for a transition
-- table on every update of a call, a BEFORE statement trigger with a WHEN clause marked the flag
-- writes, and the derivation's generic plan was started up for each check (docs/invariants.md,
-- "Measured reasons for the shapes in sql/"). The read takes no lock: the writer holds the
-- call's row lock, and what it cannot see yet is judged again at commit. Few PL/pgSQL
-- expressions: each is compiled again in every transaction.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md). The writer may record a pending check
-- (guard.flag_checks_at_commit) or queue a call (guard.detection_queue) but not read or remove
-- either.
CREATE OR REPLACE FUNCTION guard.check_flag_write()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    has_active boolean;
BEGIN
    -- Two tests, the small one first: Booking Guard's own derivations of a call (every booking,
    -- cancel and delete) pay for compiling this one only; a test written as one OR cost them
    -- about 14k instructions more (bench/instructions.py).
    IF pg_catalog.pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    IF
        (
            NEW.appointment_made,
            NEW.appointment_link_status,
            NEW.appointment_made IS FALSE OR NEW.appointment_linked_at IS NULL,
            NEW.session_outcome,
            NEW.booking_failed
        ) IS NOT DISTINCT FROM (
            OLD.appointment_made,
            OLD.appointment_link_status,
            OLD.appointment_made IS FALSE OR OLD.appointment_linked_at IS NULL,
            OLD.session_outcome,
            OLD.booking_failed
        )
    THEN
        RETURN NULL;
    END IF;
    has_active := EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.call_id = NEW.id
            AND a.company_id = NEW.company_id
            AND guard.is_active_appointment(a.status, a.deleted_at)
    );
    -- A call without an active appointment whose outcome or flags were written (the write that
    -- ends a call that did not book, or claims a booking it does not have): queued for detection
    -- as soon as the transaction commits (guard.detection_queue; NOTIFY wakes guard watch, and
    -- a rolled-back write queues nothing). The everyday write that restates a booked call's
    -- flags pays for this test only.
    IF NOT has_active THEN
        INSERT INTO guard.detection_queue (call_id) VALUES (NEW.id);
        -- Called in an expression, not by PERFORM: a PERFORM is a query, with an executor to
        -- start.
        IF pg_catalog.pg_notify('guard_detection_queue', '') IS NULL THEN
            -- never: pg_notify returns void, not NULL
        END IF;
    END IF;
    IF guard.call_flags_contradict(
        NEW.appointment_made,
        NEW.appointment_link_status,
        NEW.appointment_linked_at,
        NEW.session_outcome,
        NEW.booking_failed,
        has_active
    ) THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (ARRAY[NEW.id], 'update');
    END IF;
    RETURN NULL;
END;
$$;
