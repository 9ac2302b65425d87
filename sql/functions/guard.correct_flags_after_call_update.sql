-- I3, AFTER UPDATE ... FOR EACH STATEMENT on calls: the calls of a statement that wrote booking
-- flags (marked by guard.note_flag_write, the BEFORE trigger on those columns) are checked against
-- their appointments. A statement that wrote no flag column ends at the first line. Writes by
-- Booking Guard's own triggers (depth > 1) are derived already.
-- A write that agrees with the appointments (the everyday case: the application sets the flags
-- after writing the appointment) ends here. One that contradicts them may be a state the
-- transaction has not finished (the call's flags first, then its appointment), so it is judged
-- when the transaction commits (guard.check_flags_at_commit): corrected there, or refused in
-- reject mode.
-- With the writer's rights and no SET clause, every function name qualified (see "Trigger
-- functions without SET clauses" in docs/security.md): it fires for every update of a call, most
-- of which end at the first line, and a SECURITY DEFINER function with SET clauses made each of
-- those firings cost several times more. The writer may record a pending check
-- (guard.flag_checks_at_commit) but not read or remove one.
-- One call (the everyday one-row write) is passed as ARRAY[id]: PostgreSQL then plans the check
-- for one call once and reuses the plan. For an array variable it assumes ten elements, prefers
-- a plan of its own for every firing and plans it again each time; a statement of many calls
-- pays that planning once for all of them.
CREATE OR REPLACE FUNCTION guard.correct_flags_after_call_update()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    written_calls bigint[];
    contradicting bigint[];
BEGIN
    IF
        pg_catalog.pg_trigger_depth() > 1
        OR pg_catalog.current_setting('booking_guard.i3_flags_written', TRUE) IS DISTINCT FROM 'on'
    THEN
        RETURN NULL;
    END IF;
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'off', TRUE);
    written_calls := ARRAY(SELECT n.id FROM new_rows AS n);
    IF pg_catalog.cardinality(written_calls) = 1 THEN
        contradicting := ARRAY(
            SELECT f.id FROM guard.call_flags_to_correct(ARRAY[written_calls[1]], FALSE) AS f
        );
    ELSIF pg_catalog.cardinality(written_calls) > 1 THEN
        contradicting := ARRAY(
            SELECT f.id FROM guard.call_flags_to_correct(written_calls, FALSE) AS f
        );
    END IF;
    IF pg_catalog.cardinality(contradicting) > 0 THEN
        INSERT INTO guard.flag_checks_at_commit (call_ids, written_by)
        VALUES (contradicting, 'update');
    END IF;
    RETURN NULL;
END;
$$;
