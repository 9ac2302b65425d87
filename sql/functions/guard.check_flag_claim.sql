-- I3, AFTER INSERT ... FOR EACH ROW on calls: a new call's booking flags are checked against its
-- appointments. It has none yet (an appointment references an existing call), so a call that
-- claims a made or linked booking contradicts them: the rule guard.call_flags_contradict with no
-- active appointment. Such a claim may be a state the transaction has not finished (the call
-- first, then its appointment), so it is recorded (guard.flag_checks_at_commit) and judged when
-- the transaction commits (guard.check_flags_at_commit): corrected there, or refused in reject
-- mode. An update's write of the flags is guard.check_flag_write's.
-- Every new call is checked, whoever inserts it: no Booking Guard trigger inserts calls.
-- A call inserted already claiming a booking (it has no appointment yet) is also queued for
-- detection at commit (guard.detection_queue), as guard.check_flag_write queues an update's
-- claim: found when its grace period ends, not at the next 5-minute pass. One test first, so
-- that the everyday new call still runs one PL/pgSQL expression (a WHEN clause on the trigger
-- cost it 200k instructions more: it is planned again for every statement, bench/instructions.py).
-- Its own function, not a branch of guard.check_flag_write: a new call then runs one PL/pgSQL
-- expression, and each is compiled again in every transaction (bench/instructions.py, "new
-- call"). AFTER, not in the BEFORE ROW normaliser: a pending check recorded before the row exists
-- would be judged, under SET CONSTRAINTS ... IMMEDIATE, before there is a call to judge.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md).
CREATE OR REPLACE FUNCTION guard.check_flag_claim()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF
        guard.call_flags_contradict(
            NEW.appointment_made,
            NEW.appointment_link_status,
            NEW.appointment_linked_at,
            NEW.session_outcome,
            NEW.booking_failed,
            FALSE
        )
        OR NEW.session_outcome = 'appointment_booked'
    THEN
        IF guard.call_flags_contradict(
            NEW.appointment_made,
            NEW.appointment_link_status,
            NEW.appointment_linked_at,
            NEW.session_outcome,
            NEW.booking_failed,
            FALSE
        ) THEN
            INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
            VALUES (ARRAY[NEW.id], 'insert');
        END IF;
        IF NEW.appointment_made OR NEW.session_outcome = 'appointment_booked' THEN
            INSERT INTO guard.detection_queue (call_id) VALUES (NEW.id);
            -- Called in an expression, not by PERFORM: a PERFORM is a query, with an executor to
            -- start.
            IF pg_catalog.pg_notify('guard_detection_queue', '') IS NULL THEN
                -- never: pg_notify returns void, not NULL
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
