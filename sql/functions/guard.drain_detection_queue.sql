-- Check the calls queued at commit (guard.detection_queue) that are due, at most `batch` queue
-- rows (NULL: the setting detection_queue_batch); returns how many calls it took (0: none due).
-- What guard watch runs as soon as a NOTIFY guard_detection_queue arrives or a row falls due,
-- and the detect_queue job runs as the fallback (docs/jobs.md, "Detection at commit").
-- The rows are removed in the transaction that checks their calls, taken with SKIP LOCKED (once,
-- as an InitPlan: guard.review_claim says why): two watchers (or a watcher and the job) never
-- check the same row, and a row whose check rolls back is there for the next drain. Each call a
-- check could act on (guard.calls_to_check, one statement for the batch) is checked as
-- guard.check_call checks it (guard.run_checks for one call: its own advisory lock, never waiting
-- on the windowed pass); the others (most: calls that ended without a booking) hold nothing any
-- check finds, and a call deleted since it was queued is skipped.
-- A call that still claims a booking without an active appointment but whose claim is inside
-- the grace period (grace_period_seconds, counted from its last write as
-- guard.check_booked_without_appointment counts it) is queued again for the end of the grace
-- period: the check that found nothing now finds the phantom then.
-- A drain that took a whole batch leaves more due, most likely: it sets booking_guard.run_again
-- for the rest of its transaction, so that pg_cron's run of the detect_queue job drains again
-- after committing rather than waiting for its next turn (guard.cron_command). One transaction
-- a batch: each call's check holds its advisory lock until commit, and batch after batch in one
-- transaction ran out of shared memory for them.
CREATE OR REPLACE FUNCTION guard.drain_detection_queue(batch integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    due_calls bigint[];
    taken_rows integer;
    batch_rows integer := coalesce(batch, (guard.setting('detection_queue_batch') #>> '{}')::integer);
    queued_call bigint;
    grace interval;
BEGIN
    WITH taken AS (
        DELETE FROM guard.detection_queue AS q
        WHERE q.id = ANY (ARRAY(
            SELECT d.id
            FROM guard.detection_queue AS d
            WHERE d.due_at <= now()
            ORDER BY d.id
            LIMIT batch_rows
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING q.call_id
    )

    SELECT coalesce(array_agg(DISTINCT t.call_id ORDER BY t.call_id), '{}'), count(*)
    INTO due_calls, taken_rows
    FROM taken AS t;
    IF cardinality(due_calls) = 0 THEN
        RETURN 0;
    END IF;
    IF taken_rows >= batch_rows THEN
        PERFORM set_config('booking_guard.run_again', 'on', TRUE);
    END IF;
    FOREACH queued_call IN ARRAY guard.calls_to_check(due_calls) LOOP
        IF EXISTS (SELECT FROM public.calls AS c WHERE c.id = queued_call) THEN
            PERFORM FROM guard.run_checks(NULL, queued_call);
        END IF;
    END LOOP;
    grace := make_interval(secs => (guard.setting('grace_period_seconds') #>> '{}')::integer);
    INSERT INTO guard.detection_queue (call_id, due_at)
    SELECT c.id, guard.app_time(greatest(c.created_at, c.updated_at), guard.app_time_zone()) + grace
    FROM public.calls AS c
    WHERE
        c.id = ANY(due_calls)
        AND (c.appointment_made OR c.session_outcome = 'appointment_booked')
        -- the view offends once claim + grace < now(): not yet at the very end of the grace
        AND guard.app_time(greatest(c.created_at, c.updated_at), guard.app_time_zone()) + grace >= now()
        AND NOT EXISTS (
            SELECT
            FROM public.appointments AS a
            WHERE
                a.call_id = c.id
                AND a.company_id = c.company_id
                AND guard.is_active_appointment(a.status, a.deleted_at)
        );
    RETURN cardinality(due_calls);
END;
$$;
