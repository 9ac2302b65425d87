-- I3, AFTER INSERT OR UPDATE OF the booking flags ... FOR EACH ROW on calls: a call whose
-- booking flags the application wrote is checked against its appointments. A new call has none
-- yet, so one claiming a made or linked booking contradicts them; an update is compared with
-- what its appointments say. An update that writes no flag column (the everyday update of a
-- call's status) does not fire it. Writes by Booking Guard's own triggers (depth > 1) are
-- derived already.
-- A write that agrees with the appointments (the everyday case) ends here. One that contradicts
-- them may be a state the transaction has not finished (the call's flags first, then its
-- appointment), so it is recorded (guard.flag_checks_at_commit) and judged when the transaction
-- commits (guard.check_flags_at_commit): corrected there, or refused in reject mode.
-- AFTER, not in the BEFORE ROW normaliser: a pending check recorded before the row exists would
-- be judged, under SET CONSTRAINTS ... IMMEDIATE, before there is a call to judge.
-- Row-level, one index read and a comparison (guard.call_flags_contradict, proven equal to the
-- derivation rule by tests/db/test_flag_rule.py): a statement trigger paid for a transition
-- table on every update of a call, a BEFORE statement trigger with a WHEN clause marked the flag
-- writes, and the derivation's generic plan was started up for each check (docs/invariants.md,
-- "Measured reasons for the shapes in sql/"). The read takes no lock: the writer holds the
-- call's row lock, and what it cannot see yet is judged again at commit.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md). The writer may record a pending check
-- (guard.flag_checks_at_commit) but not read or remove one.
CREATE OR REPLACE FUNCTION guard.check_flag_write()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    has_active boolean := FALSE;
BEGIN
    IF pg_catalog.pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    -- An appointment references an existing call: a new one has none.
    IF TG_OP = 'UPDATE' THEN
        has_active := EXISTS (
            SELECT
            FROM public.appointments AS a
            WHERE
                a.call_id = NEW.id
                AND a.company_id = NEW.company_id
                AND guard.is_active_appointment(a.status, a.deleted_at)
        );
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
        VALUES (ARRAY[NEW.id], pg_catalog.lower(TG_OP));
    END IF;
    RETURN NULL;
END;
$$;
