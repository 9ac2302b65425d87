-- I3, BEFORE UPDATE OF the booking flags ... FOR EACH STATEMENT on calls: marks, for the rest of
-- this statement, that the application wrote booking flags, so that the statement's AFTER trigger
-- (guard.correct_flags_after_call_update) checks its rows. A statement that writes no flag column
-- (the application's everyday update of a call's status) does not fire this trigger, and its
-- AFTER trigger returns at once: before, it paired both transition tables to find changed flags,
-- on every update of a call (docs/invariants.md, "Measured reasons for the shapes in sql/").
-- The mark is a setting local to the transaction (booking_guard.i3_flags_written): a BEFORE
-- trigger always runs before the AFTER trigger of the same statement, which clears it. A session
-- can set it too. Setting it only makes a statement check more; clearing it inside the very
-- statement that writes flags (set_config in its SET list) skips the write-time check, which no
-- application does by mistake, and guard.run_detection still reports the contradiction (I3) on
-- its next run.
-- No SET clause: nothing here is looked up by name but pg_catalog.set_config.
CREATE OR REPLACE FUNCTION guard.note_flag_write()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.set_config('booking_guard.i3_flags_written', 'on', TRUE);
    RETURN NULL;
END;
$$;
