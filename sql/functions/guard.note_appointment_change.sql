-- I3, AFTER UPDATE OF call_id, company_id, status, deleted_at ... FOR EACH ROW on appointments: note,
-- for the statement's own trigger (guard.sync_flags_after_appointment_update), the calls whose
-- derived flags this row's change may move: its old call, as L<id> when the appointment was active
-- there (the call lost it) or T<id>, and its new call as T<id> (unless that is the lost one). A
-- row whose call, company and activeness are unchanged (a status from scheduled to completed)
-- notes nothing, and an UPDATE that sets none of the four columns (a move, a note) does not fire
-- this trigger at all.
-- The notes are a transaction-local setting the statement trigger reads and clears: no table
-- write, no query. Past 4,000 characters (some 500 calls) they become 'many' and the statement
-- trigger derives from its transition tables instead, so they never grow with a bulk statement.
-- A setting any session can write selects the calls to derive again, never how: deriving a call
-- a session names needlessly changes nothing, under its own rights.
-- The everyday change is a statement's only changed row, its call unchanged (a cancel, soft
-- delete or restore): it notes L<id> or T<id> through small expressions. Every other note (a
-- second row, a changed call) goes through the general expression, about 36k instructions more:
-- PL/pgSQL compiles each expression again in every transaction, at a cost that grows with its
-- function calls (bench/instructions.py). Assignments, not PERFORM: a PERFORM is a query, with an
-- executor to start. No SET clause, every function name qualified (docs/security.md, "Trigger
-- functions without SET clauses").
CREATE OR REPLACE FUNCTION guard.note_appointment_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    noted text;
BEGIN
    IF
        (NEW.call_id, NEW.company_id, guard.is_active_appointment(NEW.status, NEW.deleted_at))
        IS NOT DISTINCT FROM
        (OLD.call_id, OLD.company_id, guard.is_active_appointment(OLD.status, OLD.deleted_at))
    THEN
        RETURN NULL;
    END IF;
    -- the setting read in the test, and again only for the general expression
    IF
        pg_catalog.current_setting('booking_guard.appointment_changes', TRUE) > ''
        OR NEW.call_id IS DISTINCT FROM OLD.call_id
    THEN
        noted := pg_catalog.current_setting('booking_guard.appointment_changes', TRUE);
        noted := pg_catalog.set_config(
            'booking_guard.appointment_changes',
            CASE
                WHEN pg_catalog.length(noted) > 4000 OR noted = 'many' THEN 'many'
                ELSE pg_catalog.concat_ws(
                    ',',
                    nullif(noted, ''),
                    CASE
                        WHEN OLD.call_id IS NULL THEN NULL
                        WHEN guard.is_active_appointment(OLD.status, OLD.deleted_at) THEN 'L' || OLD.call_id
                        ELSE 'T' || OLD.call_id
                    END,
                    CASE
                        WHEN NEW.call_id IS NULL THEN NULL
                        WHEN
                            NEW.call_id = OLD.call_id
                            AND guard.is_active_appointment(OLD.status, OLD.deleted_at)
                            THEN NULL
                        ELSE 'T' || NEW.call_id
                    END
                )
            END,
            TRUE
        );
    ELSIF OLD.call_id IS NOT NULL THEN
        -- the statement's first note, the same call on both sides
        noted := pg_catalog.set_config(
            'booking_guard.appointment_changes',
            CASE WHEN guard.is_active_appointment(OLD.status, OLD.deleted_at) THEN 'L' ELSE 'T' END
            || OLD.call_id,
            TRUE
        );
    END IF;
    RETURN NULL;
END;
$$;
