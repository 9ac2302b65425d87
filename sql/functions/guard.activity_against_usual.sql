-- I9, the activity monitors: per company, how many calls or appointments (stream 'calls' or
-- 'appointments') arrived in the recent window (monitor_window_minutes) against the usual
-- number for that hour of the week, the mean of the same window 1 to 4 weeks earlier, and when
-- the last one arrived. Only companies whose usual number reaches monitor_min_expected are
-- returned: below it the hour is a quiet one for that company (closed at night, a small
-- practice), and silence there is normal, not an incident.
-- The mean divides by 4 whatever the company's age: a company younger than four weeks has a
-- lower usual number and is alerted later, never sooner.
-- Five index range scans on created_at (as check booking_failure_anomaly), then one backward
-- probe of (company_id, created_at) per returned company. windows is MATERIALIZED so that the
-- joins compare plain columns (see guard.check_booking_failure_anomaly).
-- LANGUAGE sql, STABLE, one SELECT: inlined into the check view, where the constant stream
-- prunes the other table's branch.
CREATE OR REPLACE FUNCTION guard.activity_against_usual(stream text)
RETURNS TABLE (company_id bigint, recent bigint, usual numeric, last_at timestamptz)
LANGUAGE sql
STABLE
AS $$
    WITH params AS (
        SELECT
            max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'monitor_window_minutes')
                AS window_minutes,
            max((s.value #>> '{}')::numeric) FILTER (WHERE s.key = 'monitor_min_expected')
                AS min_expected
        FROM guard.settings AS s
        WHERE s.key IN ('monitor_window_minutes', 'monitor_min_expected')
    ),

    -- The same hour of the week on the application's wall clock (weeks counted in its zone, not
    -- the session's: across a change to summer time a week is 167 hours there).
    instants AS (
        SELECT
            w.weeks_ago,
            z.zone,
            (
                (pg_catalog.now() AT TIME ZONE z.zone) - make_interval(days => 7 * w.weeks_ago)
                - make_interval(mins => p.window_minutes)
            ) AT TIME ZONE z.zone AS starts,
            ((pg_catalog.now() AT TIME ZONE z.zone) - make_interval(days => 7 * w.weeks_ago)) AT TIME ZONE z.zone
                AS ends
        FROM params AS p
        CROSS JOIN (SELECT guard.app_time_zone() AS zone) AS z
        CROSS JOIN generate_series(0, 4) AS w (weeks_ago)
    ),

    -- in the types of the created_at columns (guard.to_app_time)
    windows AS MATERIALIZED (
        SELECT
            i.weeks_ago,
            guard.to_app_time(i.starts, (SELECT x.created_at FROM public.calls AS x LIMIT 0), i.zone) AS calls_start,
            guard.to_app_time(i.ends, (SELECT x.created_at FROM public.calls AS x LIMIT 0), i.zone) AS calls_end,
            guard.to_app_time(i.starts, (SELECT x.created_at FROM public.appointments AS x LIMIT 0), i.zone)
                AS appointments_start,
            guard.to_app_time(i.ends, (SELECT x.created_at FROM public.appointments AS x LIMIT 0), i.zone) AS appointments_end
        FROM instants AS i
    ),

    counted AS (
        SELECT c.company_id, w.weeks_ago, count(*) AS arrived
        FROM windows AS w
        INNER JOIN public.calls AS c ON w.calls_start <= c.created_at AND w.calls_end > c.created_at
        WHERE stream = 'calls'
        GROUP BY c.company_id, w.weeks_ago
        UNION ALL
        SELECT a.company_id, w.weeks_ago, count(*) AS arrived
        FROM windows AS w
        INNER JOIN public.appointments AS a
            ON w.appointments_start <= a.created_at AND w.appointments_end > a.created_at
        WHERE stream = 'appointments'
        GROUP BY a.company_id, w.weeks_ago
    ),

    compared AS (
        SELECT
            k.company_id,
            coalesce(sum(k.arrived) FILTER (WHERE k.weeks_ago = 0), 0) AS recent,
            coalesce(sum(k.arrived) FILTER (WHERE k.weeks_ago > 0), 0) / 4.0 AS usual
        FROM counted AS k
        GROUP BY k.company_id
    )

    SELECT
        cmp.company_id,
        cmp.recent,
        round(cmp.usual, 2),
        CASE
            WHEN stream = 'calls'
                THEN (
                    SELECT guard.app_time(max(c.created_at), (SELECT guard.app_time_zone()))
                    FROM public.calls AS c
                    WHERE c.company_id = cmp.company_id
                )
            ELSE (
                SELECT guard.app_time(max(a.created_at), (SELECT guard.app_time_zone()))
                FROM public.appointments AS a
                WHERE a.company_id = cmp.company_id
            )
        END
    FROM compared AS cmp
    CROSS JOIN params AS p
    WHERE cmp.usual >= p.min_expected;
$$;
