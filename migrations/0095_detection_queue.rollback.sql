-- Rollback of 0095_detection_queue. A grace period still at 0095's default goes back to 300 s,
-- with its description.
-- The detect_queue job (a row of sql/data/) goes too: it drains the queue dropped here. Its runs
-- stay in guard.job_runs, as those of a removed job do; its pg_cron entry goes when the
-- definitions of the level rolled back to schedule the jobs again. Calls still queued are left
-- to the windowed detection pass.
-- The calls trigger's function goes back to what it was before 0095, which queued nothing: left
-- as it is, every write of a call's outcome or flags would fail on the dropped queue until the
-- next apply (the migrator marks its record stale, so that apply runs the file again).
-- Locks: ROW EXCLUSIVE on guard.settings and guard.jobs; ACCESS EXCLUSIVE on the queue it drops.
DELETE FROM guard.jobs
WHERE name = 'detect_queue';

UPDATE guard.settings SET value = '300'::jsonb
WHERE key = 'grace_period_seconds' AND value = '30'::jsonb;

-- the description sql/data/ gave it with 0095 (nothing below 0095 writes it again)
UPDATE guard.settings SET description = 'How long a call may claim appointment_booked before an appointment exists.'
WHERE key = 'grace_period_seconds';

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
            NEW.appointment_linked_at IS NULL,
            NEW.session_outcome,
            NEW.booking_failed
        ) IS NOT DISTINCT FROM (
            OLD.appointment_made,
            OLD.appointment_link_status,
            OLD.appointment_linked_at IS NULL,
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

DROP TABLE guard.detection_queue;
