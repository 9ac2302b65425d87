-- I7, check booking_failure_anomaly of rule I7_booking_failures: a company whose booking-failure
-- rate in the recent window (failure_window_minutes) is anomaly_factor times its usual rate for
-- that hour of the week, the usual rate being the same window 1 to 4 weeks earlier. Fewer than
-- anomaly_min_failures failures never count. A call queued because the service's circuit was open
-- (its last booking attempt settled as queued) is left out of the rate, neither a call nor a
-- failure. Five index range scans on calls.created_at, whatever the table size, and one lookup of
-- the journal by call for each failed call in them. windows is MATERIALIZED so that the join with calls compares two plain columns:
-- under the row-level security of a reporting login, a join condition that computes with the
-- window's columns (timestamp arithmetic is not leakproof) may not be pushed below the tenant
-- policy into the index scan, and calls was read whole (bench/tenant_rls.py).
CREATE OR REPLACE VIEW guard.check_booking_failure_anomaly WITH (security_invoker = TRUE) AS
WITH params AS (
    SELECT
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'failure_window_minutes') AS window_minutes,
        max((s.value #>> '{}')::numeric) FILTER (WHERE s.key = 'anomaly_factor') AS factor,
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'anomaly_min_failures') AS min_failures
    FROM guard.settings AS s
    WHERE s.key IN ('failure_window_minutes', 'anomaly_factor', 'anomaly_min_failures')
),

app_zone AS (
    SELECT guard.app_time_zone() AS zone
),

windows AS MATERIALIZED (
    SELECT
        w.weeks_ago,
        -- the same hour of the week on the application's wall clock, in the type of
        -- calls.created_at (guard.to_app_time; see guard.activity_against_usual)
        guard.to_app_time(
            (
                (now() AT TIME ZONE z.zone) - make_interval(days => 7 * w.weeks_ago)
                - make_interval(mins => p.window_minutes)
            ) AT TIME ZONE z.zone,
            (SELECT x.created_at FROM public.calls AS x LIMIT 0),  -- noqa: AM09
            z.zone
        ) AS starts,
        guard.to_app_time(
            ((now() AT TIME ZONE z.zone) - make_interval(days => 7 * w.weeks_ago)) AT TIME ZONE z.zone,
            (SELECT x.created_at FROM public.calls AS x LIMIT 0),  -- noqa: AM09
            z.zone
        ) AS ends
    FROM params AS p
    CROSS JOIN app_zone AS z
    CROSS JOIN generate_series(0, 4) AS w (weeks_ago)
),

outcomes AS (
    SELECT
        c.company_id,
        w.weeks_ago,
        c.session_outcome = 'creation_failed' OR c.booking_failed AS failed,
        -- a failed call whose last booking attempt was queued behind an open circuit (the
        -- calendar was not asked) is no failed booking: the circuit-open alert tells of it
        coalesce(
            (c.session_outcome = 'creation_failed' OR c.booking_failed)
            AND (
                SELECT ba.state = 'queued'
                FROM guard.booking_attempts AS ba
                WHERE ba.call_id = c.id
                ORDER BY ba.id DESC
                LIMIT 1
            ),
            FALSE
        ) AS queued
    FROM windows AS w
    INNER JOIN public.calls AS c ON w.starts <= c.created_at AND w.ends > c.created_at
),

counted AS (
    SELECT
        o.company_id,
        o.weeks_ago,
        count(*) AS calls,
        count(*) FILTER (WHERE o.failed) AS failures
    FROM outcomes AS o
    WHERE NOT o.queued
    GROUP BY o.company_id, o.weeks_ago
),

compared AS (
    SELECT
        r.company_id,
        r.calls AS recent_calls,
        r.failures AS recent_failures,
        r.failures::numeric / r.calls AS recent_rate,
        coalesce(sum(h.failures)::numeric / nullif(sum(h.calls), 0), 0) AS usual_rate
    FROM counted AS r
    LEFT JOIN counted AS h ON r.company_id = h.company_id AND h.weeks_ago > 0
    WHERE r.weeks_ago = 0
    GROUP BY r.company_id, r.calls, r.failures
)

SELECT
    'booking_failure_anomaly'::text AS check_id,
    cmp.company_id,
    'company'::text AS entity_type,
    cmp.company_id AS entity_id,
    NULL::bigint AS call_id,
    'critical'::text AS severity,
    now() AS observed_at,
    jsonb_build_object(
        'recent_calls', cmp.recent_calls,
        'recent_failures', cmp.recent_failures,
        'recent_rate', round(cmp.recent_rate, 4),
        'usual_rate', round(cmp.usual_rate, 4),
        'factor', p.factor
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM compared AS cmp
CROSS JOIN params AS p
WHERE
    cmp.recent_failures >= p.min_failures
    AND cmp.recent_rate > p.factor * cmp.usual_rate;
