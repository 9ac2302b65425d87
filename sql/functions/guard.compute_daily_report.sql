-- The daily report of one UTC day, one row per company, computed and not stored (what
-- guard.daily_report stores for a day that has ended; `guard report` shows an unfinished day
-- with it). Definitions:
-- total_calls: calls created during the day (UTC). The day's alerts: detection alerts, open or
-- resolved, whenever first seen, about a call created that day (entity_type call, or
-- details.call_id), about an appointment created that day, or about neither (the failure
-- anomaly) first seen that day. inconsistent_calls: the day's calls with at least one of the
-- day's alerts. by_rule: the day's alerts per rule (an alert's rule is its check's rule,
-- guard.checks; `(unknown)` for a check removed since); by_check: the same alerts per check;
-- top_issues: the five rules with most, with each rule's likely cause and action.
-- total_appointments: appointments created during the day. recovery_rate_pct: of the day's
-- alerts, those resolved as fixed or settled in review (not superseded) when the report is
-- generated. detection_latency_p95_seconds: of the day's alerts opened by detection (with an
-- observed_at), the p95 of first_seen_at - the offending row's last write (written_at, else
-- observed_at: as guard.kpis). action_items: the day's alerts still
-- open, per rule (most severe, then most numerous, first) with the rule's action, then the
-- review queue when it is not empty.
-- auto_corrected: correction_audit rows of the day; manual_reviews: review items created during
-- the day; open_review_items: open or claimed items when the report is generated. trend: this
-- day's rate, recovery rate and detection latency against the means of the reports stored for
-- the 7 days before.
-- Operational alerts (entity_type job, no company) are not part of any company's report.
CREATE OR REPLACE FUNCTION guard.compute_daily_report(report_day date)
RETURNS SETOF guard.daily_reports
LANGUAGE sql
STABLE
SET search_path = pg_catalog
-- The planner's estimates for this statement (hundreds of millions of rows, from joins of
-- CTEs) pass jit_above_cost, and compiling it took 0.3-1 s of a report that runs in 0.2 s
-- (docs/invariants.md, "Measured reasons for the shapes in sql/").
SET jit = off
AS $$
WITH bounds AS (
    SELECT
        timezone('UTC', report_day::timestamp) AS day_start,
        timezone('UTC', (report_day + 1)::timestamp) AS day_end,
        -- the same bounds in the types of the application's created_at columns, read in its
        -- zone (guard.to_app_time): a plain comparison on their indexes
        guard.to_app_time(
            timezone('UTC', report_day::timestamp), (SELECT x.created_at FROM public.calls AS x LIMIT 0), guard.app_time_zone()
        ) AS calls_start,
        guard.to_app_time(
            timezone('UTC', (report_day + 1)::timestamp), (SELECT x.created_at FROM public.calls AS x LIMIT 0), guard.app_time_zone()
        ) AS calls_end,
        guard.to_app_time(
            timezone('UTC', report_day::timestamp), (SELECT x.created_at FROM public.appointments AS x LIMIT 0), guard.app_time_zone()
        ) AS appointments_start,
        guard.to_app_time(
            timezone('UTC', (report_day + 1)::timestamp), (SELECT x.created_at FROM public.appointments AS x LIMIT 0),
            guard.app_time_zone()
        ) AS appointments_end
),

day_calls AS (
    SELECT c.id, c.company_id
    FROM public.calls AS c, bounds AS b
    WHERE c.created_at >= b.calls_start AND c.created_at < b.calls_end
),

-- detection alerts from the start of the day on (a row is found after it was written), with
-- the call they concern, if any
alert_subjects AS (
    SELECT
        a.company_id,
        coalesce(k.rule_id, '(unknown)') AS rule_id,
        a.check_id,
        a.entity_type,
        a.entity_id,
        a.first_seen_at,
        coalesce(a.written_at, a.observed_at) AS observed_at,
        a.status,
        a.resolution,
        CASE
            WHEN a.entity_type = 'call' THEN a.entity_id
            WHEN a.details ->> 'call_id' ~ '^[0-9]{1,18}$' THEN (a.details ->> 'call_id')::bigint
        END AS call_id
    FROM guard.alerts AS a
    CROSS JOIN bounds AS b
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    WHERE a.first_seen_at >= b.day_start AND a.entity_type <> 'job'
),

-- the day's problems: alerts about the day's calls, about appointments created that day, and
-- alerts about neither (the failure anomaly) first seen that day. Joins, not EXISTS inside the
-- CASE: a correlated subquery over the day_calls CTE is a scan of it per alert (a burst of 20k
-- alerts against a day of 33k calls: 55 s); joined on the keys it is one hash join. The
-- appointment of an alert is looked up by its key (LATERAL, kept a subquery by OFFSET 0): joined,
-- the planner hashed every appointment ever made, a cost that grew with the history (0.4 s of the
-- report at 3M calls).
day_alerts AS (
    SELECT
        s.company_id, s.rule_id, s.check_id, s.call_id, s.first_seen_at, s.observed_at, s.status,
        s.resolution
    FROM alert_subjects AS s
    CROSS JOIN bounds AS b
    LEFT JOIN day_calls AS dc ON s.call_id = dc.id
    LEFT JOIN LATERAL (
        SELECT ap.created_at FROM public.appointments AS ap
        WHERE s.call_id IS NULL AND s.entity_type = 'appointment' AND ap.id = s.entity_id
        OFFSET 0
    ) AS ap ON TRUE
    WHERE
        s.company_id IS NOT NULL
        AND CASE
            WHEN s.call_id IS NOT NULL THEN dc.id IS NOT NULL
            WHEN s.entity_type = 'appointment'
                THEN ap.created_at >= b.appointments_start AND ap.created_at < b.appointments_end
            ELSE s.first_seen_at < b.day_end
        END
),

flagged_calls AS (
    SELECT DISTINCT da.call_id FROM day_alerts AS da WHERE da.call_id IS NOT NULL
),

call_counts AS (
    SELECT
        dc.company_id,
        count(*) AS total_calls,
        count(fc.call_id) AS inconsistent_calls
    FROM day_calls AS dc
    LEFT JOIN flagged_calls AS fc ON dc.id = fc.call_id
    GROUP BY dc.company_id
),

rule_counts AS (
    SELECT
        da.company_id,
        da.rule_id,
        count(*) AS alerts,
        row_number() OVER (PARTITION BY da.company_id ORDER BY count(*) DESC, da.rule_id) AS rank
    FROM day_alerts AS da
    GROUP BY da.company_id, da.rule_id
),

checks_by_company AS (
    SELECT ck.company_id, jsonb_object_agg(ck.check_id, ck.alerts) AS by_check
    FROM (
        SELECT da.company_id, da.check_id, count(*) AS alerts
        FROM day_alerts AS da
        GROUP BY da.company_id, da.check_id
    ) AS ck
    GROUP BY ck.company_id
),

rules_by_company AS (
    SELECT
        rc.company_id,
        jsonb_object_agg(rc.rule_id, rc.alerts) AS by_rule,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'rule_id', rc.rule_id,
                    'count', rc.alerts,
                    'severity', r.severity,
                    'description', r.description,
                    'likely_cause', r.likely_cause,
                    'action', r.action
                )
                ORDER BY rc.rank
            ) FILTER (WHERE rc.rank <= 5),
            '[]'
        ) AS top_issues
    FROM rule_counts AS rc
    LEFT JOIN guard.rules AS r ON rc.rule_id = r.id
    GROUP BY rc.company_id
),

alert_outcomes AS (
    SELECT
        da.company_id,
        round(
            100.0 * count(*) FILTER (WHERE da.status = 'resolved' AND da.resolution IN ('fixed', 'manual'))
            / count(*),
            2
        ) AS recovery_rate_pct,
        round((percentile_cont(0.95) WITHIN GROUP (
            ORDER BY extract(EPOCH FROM da.first_seen_at - da.observed_at)
        ) FILTER (WHERE da.observed_at IS NOT NULL))::numeric, 2) AS detection_latency_p95_seconds
    FROM day_alerts AS da
    GROUP BY da.company_id
),

still_open AS (
    SELECT
        da.company_id,
        jsonb_agg(
            jsonb_build_object(
                'kind', 'open_alerts',
                'rule_id', da.rule_id,
                'severity', r.severity,
                'count', da.open_alerts,
                'action', r.action
            )
            ORDER BY
                array_position(ARRAY['critical', 'high', 'medium', 'low'], r.severity),
                da.open_alerts DESC,
                da.rule_id
        ) AS items
    FROM (
        SELECT d.company_id, d.rule_id, count(*) AS open_alerts
        FROM day_alerts AS d
        WHERE d.status = 'open'
        GROUP BY d.company_id, d.rule_id
    ) AS da
    LEFT JOIN guard.rules AS r ON da.rule_id = r.id
    GROUP BY da.company_id
),

day_appointments AS (
    SELECT ap.company_id, count(*) AS total_appointments
    FROM public.appointments AS ap, bounds AS b
    WHERE ap.created_at >= b.appointments_start AND ap.created_at < b.appointments_end
    GROUP BY ap.company_id
),

corrections AS (
    SELECT ca.company_id, count(*) AS corrected
    FROM guard.correction_audit AS ca, bounds AS b
    WHERE ca.corrected_at >= b.day_start AND ca.corrected_at < b.day_end
    GROUP BY ca.company_id
),

-- the day's new items and the ones still open or claimed, each read on its index
-- (review_items_created_at_idx, review_items_unsettled_idx): no closed item of earlier days
reviews AS (
    SELECT r.company_id, sum(r.created) AS created, sum(r.still_open) AS still_open
    FROM (
        SELECT ri.company_id, count(*) AS created, 0 AS still_open
        FROM guard.review_items AS ri, bounds AS b
        WHERE ri.created_at >= b.day_start AND ri.created_at < b.day_end
        GROUP BY ri.company_id
        UNION ALL
        SELECT ri.company_id, 0 AS created, count(*) AS still_open
        FROM guard.review_items AS ri
        WHERE ri.status IN ('open', 'claimed')
        GROUP BY ri.company_id
    ) AS r
    GROUP BY r.company_id
),

rows_of_day AS (
    SELECT
        co.id AS company_id,
        coalesce(cc.total_calls, 0) AS total_calls,
        coalesce(cc.inconsistent_calls, 0) AS inconsistent_calls,
        coalesce(round(100.0 * cc.inconsistent_calls / nullif(cc.total_calls, 0), 2), 0)
        AS rate,
        coalesce(cr.corrected, 0) AS auto_corrected,
        coalesce(rv.created, 0) AS manual_reviews,
        coalesce(rv.still_open, 0) AS open_review_items,
        coalesce(rb.by_rule, '{}') AS by_rule,
        coalesce(cb.by_check, '{}') AS by_check,
        coalesce(rb.top_issues, '[]') AS top_issues,
        prev.days AS previous_days,
        prev.mean_rate AS previous_mean_rate,
        prev.mean_recovery AS previous_mean_recovery,
        prev.mean_latency AS previous_mean_latency,
        coalesce(ap.total_appointments, 0) AS total_appointments,
        ao.recovery_rate_pct,
        ao.detection_latency_p95_seconds,
        coalesce(so.items, '[]') || CASE
            WHEN coalesce(rv.still_open, 0) > 0
                THEN jsonb_build_array(jsonb_build_object(
                    'kind', 'review_queue',
                    'count', rv.still_open,
                    'action', 'Work the review queue (guard review list): each item is a call or '
                    || 'appointment a person must decide'
                ))
            ELSE '[]'
        END AS action_items
    FROM public.companies AS co
    LEFT JOIN call_counts AS cc ON co.id = cc.company_id
    LEFT JOIN corrections AS cr ON co.id = cr.company_id
    LEFT JOIN reviews AS rv ON co.id = rv.company_id
    LEFT JOIN rules_by_company AS rb ON co.id = rb.company_id
    LEFT JOIN checks_by_company AS cb ON co.id = cb.company_id
    LEFT JOIN day_appointments AS ap ON co.id = ap.company_id
    LEFT JOIN alert_outcomes AS ao ON co.id = ao.company_id
    LEFT JOIN still_open AS so ON co.id = so.company_id
    CROSS JOIN LATERAL (
        SELECT
            count(*) AS days,
            round(avg(p.inconsistency_rate_pct), 2) AS mean_rate,
            round(avg(p.recovery_rate_pct), 2) AS mean_recovery,
            round(avg(p.detection_latency_p95_seconds), 2) AS mean_latency
        FROM guard.daily_reports AS p
        WHERE
            p.company_id = co.id
            AND p.report_date >= report_day - 7
            AND p.report_date < report_day
    ) AS prev
)

SELECT
    report_day,
    rd.company_id,
    rd.total_calls::integer,
    rd.inconsistent_calls::integer,
    rd.rate::numeric(6, 2),
    rd.auto_corrected::integer,
    rd.manual_reviews::integer,
    rd.open_review_items::integer,
    rd.by_rule,
    rd.top_issues,
    jsonb_build_object(
        'previous_days', rd.previous_days,
        'previous_mean_rate_pct', rd.previous_mean_rate,
        'delta_pct_points', rd.rate - rd.previous_mean_rate,
        'direction',
        CASE
            WHEN rd.previous_days = 0 THEN 'no_data'
            WHEN rd.rate > rd.previous_mean_rate THEN 'worse'
            WHEN rd.rate < rd.previous_mean_rate THEN 'better'
            ELSE 'same'
        END,
        -- recovery and detection latency against the same days (NULL where either side has
        -- no measure: a day without alerts recovers nothing and detects nothing)
        'previous_mean_recovery_rate_pct', rd.previous_mean_recovery,
        'recovery_delta_pct_points', round(rd.recovery_rate_pct - rd.previous_mean_recovery, 2),
        'previous_mean_detection_latency_p95_seconds', rd.previous_mean_latency,
        'detection_latency_delta_seconds',
        round(rd.detection_latency_p95_seconds - rd.previous_mean_latency, 2)
    ),
    now(),
    rd.by_check,
    rd.total_appointments::integer,
    rd.recovery_rate_pct::numeric(6, 2),
    rd.detection_latency_p95_seconds::numeric(12, 2),
    rd.action_items
FROM rows_of_day AS rd
ORDER BY rd.company_id;
$$;
