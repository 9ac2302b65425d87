-- I3, AFTER INSERT ... FOR EACH STATEMENT on appointments: calls that received an active
-- appointment are booked. The answer does not depend on anything else, so it is one set-based
-- UPDATE of those calls (the statement an application would write by hand), unconditional on
-- purpose: its row lock, and READ COMMITTED's re-check of the latest row version, serialise it
-- with a concurrent writer that is unbooking the same call (tests/db/test_concurrency.py).
-- Skipping calls that already look booked would decide from a possibly stale snapshot, with one
-- exception: a call whose latest version this very transaction wrote (its xmin, not a
-- subtransaction's) is locked by it, so no other writer can have changed it, and when that
-- version already says booked, and was stamped at this transaction's now(), the UPDATE would
-- change nothing. That is the application that writes the call's flags first and then inserts
-- its appointment: the UPDATE it skips would have made the foreign keys of calls be checked
-- again (a row this transaction wrote) and its CHECKs run once more, the larger part of what
-- Booking Guard adds to that booking (a callgrind count of the workload's statements).
-- One statement, not a SELECT into an array and then an UPDATE: a single-row insert pays for
-- one executor run instead of two (bench/triggers.py). `= ANY (ARRAY(subquery))` keeps the
-- cached plan an index scan of calls whatever the size of the statement that planned it; a
-- join with the transition table would be planned for the first firing's row count.
-- No SET clause, every function name qualified: see "Trigger functions without SET clauses" in
-- docs/security.md (a SET clause costs every firing; the figure is there).
CREATE OR REPLACE FUNCTION guard.sync_flags_after_appointment_insert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE public.calls AS c
    SET
        appointment_made = TRUE,
        appointment_link_status = 'linked',
        appointment_linked_at = coalesce(
            c.appointment_linked_at,
            guard.to_app_time(pg_catalog.now(), c.appointment_linked_at, guard.app_time_zone())
        ),
        session_outcome = 'appointment_booked',
        booking_failed = FALSE,
        updated_at = guard.to_app_time(pg_catalog.now(), c.updated_at, guard.app_time_zone())
    WHERE
        c.id = ANY (ARRAY(
            SELECT n.call_id
            FROM new_rows AS n
            WHERE n.call_id IS NOT NULL AND guard.is_active_appointment(n.status, n.deleted_at)
        ))
        -- not a call this very transaction already wrote as booked (IS NOT TRUE: a NULL flag is
        -- written)
        AND (
            c.xmin = pg_catalog.pg_current_xact_id()::pg_catalog.xid
            AND c.appointment_made
            AND c.appointment_link_status = 'linked'
            AND c.appointment_linked_at IS NOT NULL
            AND c.session_outcome = 'appointment_booked'
            AND NOT c.booking_failed
            AND c.updated_at = guard.to_app_time(pg_catalog.now(), c.updated_at, guard.app_time_zone())
        ) IS NOT TRUE;
    RETURN NULL;
END;
$$;
