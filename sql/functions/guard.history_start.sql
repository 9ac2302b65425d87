-- Where `guard check --all` begins: no later than the earliest observed_at any enabled check can
-- report. Booking Guard's own views observe a row at the creation of a call, an appointment or a
-- booking attempt, at an attempt's end, or now(): the earliest of those columns is a lower bound
-- read from the tables, where reading every view whole for its min(observed_at) cost about a
-- quarter of the pass (bench/full_pass.py). A DBA's own views are read in their sandbox
-- (guard.read_own_check), as every pass reads them, never with the caller's rights; one that
-- fails is left to the batches, which report it as check_failed.
CREATE OR REPLACE FUNCTION guard.history_start()
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    earliest timestamptz;
    own_view text;
    own_start timestamptz;
    own_locks text[];
BEGIN
    IF EXISTS (
        SELECT FROM guard.checks AS k
        WHERE k.enabled AND k.check_view = ANY(guard.shipped_check_views())
    ) THEN
        SELECT least(
            (SELECT guard.app_time(min(c.created_at), (SELECT guard.app_time_zone())) FROM public.calls AS c),
            (
                SELECT guard.app_time(min(a.created_at), (SELECT guard.app_time_zone()))
                FROM public.appointments AS a
            ),
            (SELECT least(min(ba.created_at), min(ba.finished_at)) FROM guard.booking_attempts AS ba)
        ) INTO earliest;
    END IF;
    FOR own_view IN
        SELECT k.check_view
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL AND k.check_view <> ALL(guard.shipped_check_views())
        ORDER BY k.check_view
    LOOP
        own_locks := coalesce(own_locks, guard.advisory_locks_held());
        BEGIN
            SELECT min(f.observed_at) INTO own_start
            FROM guard.read_own_check(own_view, NULL, NULL, NULL, NULL) AS f;
            earliest := least(earliest, own_start);
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
    IF own_locks IS NOT NULL THEN
        PERFORM guard.release_advisory_locks_since(own_locks);
    END IF;
    RETURN earliest;
END;
$$;
