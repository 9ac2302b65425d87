-- 0031_rules_and_checks: one rule id per invariant everywhere. A rule (guard.rules) is what must
-- hold: the invariants' rules I1_call_direction ... I7_booking_failures and the operational rule
-- job_health. A check (guard.checks, new) is one way a breach of a rule is found: the detection
-- views, the rolled-back booking, the commit-time flag correction, the failed and missed job.
-- Before, detection and operational rows were rules of their own, so an invariant had two or five
-- ids (I7: I7_booking_failures, recent_booking_failure, booking_failure_anomaly,
-- booking_outcome_unknown, booking_rolled_back).
--   guard.rules         the detection and operational rows move to guard.checks (their severity,
--                       description, remedy and enabled kept), check_view goes with them; a row
--                       this migration does not know (a DBA's own) stops it with an error;
--   guard.alerts        rule_id is renamed check_id: it always held the check that raised the
--                       alert, and the fingerprints (check:entity_type:entity_id) stay, so open
--                       alerts go on being bumped and resolved. The commit-time flag correction's
--                       alerts, raised under the rule id I3_appointment_flags, get their check
--                       flags_corrected_on_write (check id and fingerprint rewritten);
--   guard.check_*       the column rule_id is renamed check_id, and rule_id (the rule) is added;
--   detection, delivery and job functions return and write check_id and rule_id;
--   guard.daily_reports by_rule counts per rule, by_check (new) per check; stored rows are
--                       rewritten (by_check takes the old per-check counts).
-- Locks, in this order: guard.daily_reports ACCESS EXCLUSIVE (ADD COLUMN with a constant default:
-- catalog only) while its rows are rewritten, until the commit: BI waits for the report tables;
-- guard.alerts ROW EXCLUSIVE while the flag-correction alerts are moved (the one scan of
-- guard.alerts), then ACCESS EXCLUSIVE from the rename to the commit: only definitions of views
-- and functions follow, and the booking path waits for those milliseconds; the check views
-- ACCESS EXCLUSIVE while dropped and created again; guard.rules ACCESS EXCLUSIVE last (DROP
-- COLUMN: catalog only). Upgrade the package (guard watch, guard metrics) with this migration:
-- the old one reads the columns renamed here.

-- The check registry: one row per way a breach of a rule is found, each belonging to one rule.
-- A check with a check_view is run by detection (a view under sql/detection returning the
-- offending rows); one without is raised by the code that sees the breach (a rolled-back booking,
-- a failed or missed job). An alert names its check (guard.alerts.check_id, the Alertmanager
-- alertname) and through it its rule.

CREATE TABLE guard.checks (
    id text PRIMARY KEY,
    rule_id text NOT NULL REFERENCES guard.rules (id),
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    description text NOT NULL,
    remedy text NOT NULL CHECK (remedy IN ('auto_fix', 'review', 'report')),
    check_view text,
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX checks_rule_id_idx ON guard.checks (rule_id);

-- A check switched off or on shows when.
CREATE TRIGGER checks_touch_updated_at
BEFORE UPDATE ON guard.checks
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();

-- The operational rule: Booking Guard's own scheduled jobs run and succeed (no invariant). Its
-- checks are raised and resolved by guard.run_job and guard.check_job_heartbeats; their alerts
-- name the job (entity_type job, no company).
INSERT INTO guard.rules (id, invariant, severity, description, remedy) VALUES
(
    'job_health', NULL, 'high',
    'Every scheduled Booking Guard job succeeds at least once within twice its interval.',
    'report'
);

-- Each detection or operational row of guard.rules becomes a check of its rule, keeping what a
-- DBA may have changed (severity, description, remedy, enabled).
INSERT INTO guard.checks (id, rule_id, severity, description, remedy, check_view, enabled)
SELECT
    r.id,
    m.rule_id,
    r.severity,
    r.description,
    r.remedy,
    r.check_view,
    r.enabled
FROM guard.rules AS r
INNER JOIN (
    VALUES
    ('flags_contradict_appointments', 'I3_appointment_flags'),
    ('booked_without_appointment', 'I4_booked_outcome'),
    ('call_without_direction', 'I1_call_direction'),
    ('orphaned_voice_appointment', 'I6_voice_appointment_call'),
    ('recent_booking_failure', 'I7_booking_failures'),
    ('cross_tenant_link', 'I5_tenant_link'),
    ('booking_failure_anomaly', 'I7_booking_failures'),
    ('booking_outcome_unknown', 'I7_booking_failures'),
    ('booking_rolled_back', 'I7_booking_failures'),
    ('job_failed', 'job_health'),
    ('job_missed', 'job_health')
) AS m (check_id, rule_id) ON r.id = m.check_id;

-- A row with a check view that is none of the above is a DBA's own detection rule: its view
-- returns rule_id where detection now reads check_id, so it cannot be carried over silently.
DO $$
DECLARE
    unknown text;
BEGIN
    SELECT string_agg(r.id, ', ' ORDER BY r.id) INTO unknown
    FROM guard.rules AS r
    WHERE r.check_view IS NOT NULL AND NOT EXISTS (SELECT FROM guard.checks AS k WHERE k.id = r.id);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'guard.rules has detection rules Booking Guard does not know: %', unknown
            USING
                ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'delete those rows, apply again, then add each as a row of guard.checks '
                || 'with its rule (docs/upgrading.md)';
    END IF;
END;
$$;

-- Raised by the commit-time check of I3 (guard.refresh_call_flags), one alert per company while
-- it keeps correcting contradicting writes: the application writes flags it should not.
INSERT INTO guard.checks (id, rule_id, severity, description, remedy) VALUES
(
    'flags_corrected_on_write', 'I3_appointment_flags', 'medium',
    'Booking flags written against the appointments were corrected at commit.',
    'auto_fix'
);

-- The day's alerts per check (what by_rule held until now).
ALTER TABLE guard.daily_reports ADD COLUMN by_check jsonb NOT NULL DEFAULT '{}';

UPDATE guard.daily_reports AS d
SET
    by_check = (
        SELECT
            coalesce(jsonb_object_agg(
                CASE e.key WHEN 'I3_appointment_flags' THEN 'flags_corrected_on_write' ELSE e.key END,
                e.value
            ), '{}')
        FROM jsonb_each(d.by_rule) AS e
    ),
    by_rule = (
        SELECT coalesce(jsonb_object_agg(s.rule_id, s.alerts), '{}')
        FROM (
            SELECT
                coalesce(k.rule_id, e.key) AS rule_id,
                sum((e.value #>> '{}')::bigint) AS alerts
            FROM jsonb_each(d.by_rule) AS e
            LEFT JOIN guard.checks AS k ON e.key = k.id
            GROUP BY coalesce(k.rule_id, e.key)
        ) AS s
    )
WHERE d.by_rule <> '{}';

-- top_issues again from the per-rule counts, as guard.daily_report makes it.
UPDATE guard.daily_reports AS d
SET
    top_issues = (
        SELECT
            coalesce(jsonb_agg(
                jsonb_build_object(
                    'rule_id', t.rule_id, 'count', t.alerts, 'severity', r.severity, 'description', r.description
                )
                ORDER BY t.alerts DESC, t.rule_id ASC
            ), '[]')
        FROM (
            SELECT
                e.key AS rule_id,
                (e.value #>> '{}')::bigint AS alerts
            FROM jsonb_each(d.by_rule) AS e
            ORDER BY (e.value #>> '{}')::bigint DESC, e.key ASC
            LIMIT 5
        ) AS t
        LEFT JOIN guard.rules AS r ON t.rule_id = r.id
    )
WHERE d.by_rule <> '{}';

-- Before the rename, so that this scan of guard.alerts holds no more than ROW EXCLUSIVE.
UPDATE guard.alerts AS a
SET
    rule_id = 'flags_corrected_on_write',
    fingerprint = 'flags_corrected_on_write:company:' || a.entity_id
WHERE a.rule_id = 'I3_appointment_flags';

ALTER TABLE guard.alerts
-- squawk-ignore renaming-column
RENAME COLUMN rule_id TO check_id;

ALTER INDEX guard.alerts_open_by_rule_idx
-- squawk-ignore renaming-object
RENAME TO alerts_open_by_check_idx;

-- Only Booking Guard's detection functions use the type.
ALTER TYPE guard.finding
-- squawk-ignore renaming-column
RENAME ATTRIBUTE rule_id TO check_id;

-- Their result columns or parameter names change: dropped and created again.
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.detect();
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.check_call(bigint);
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.run_detection(timestamptz, bigint);
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.detect_between(timestamptz, timestamptz);
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.claim_alert_deliveries(text, text, integer, double precision);
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.claim_resolved_deliveries(text, text, integer, double precision);
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.open_job_alert(text, text, text, jsonb);
-- squawk-ignore ban-drop-function
DROP FUNCTION guard.resolve_job_alert(text, text);

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_booked_without_appointment;

-- I4, check booked_without_appointment of rule I4_booked_outcome: a phantom booking. The call
-- claims a booking (made, or outcome appointment_booked) but no active appointment exists, and the
-- claim is older than the grace period. The claim's age is taken from the call's last write
-- (updated_at), because a call may book minutes after it started.
CREATE VIEW guard.check_booked_without_appointment WITH (security_invoker = TRUE) AS
SELECT
    'booked_without_appointment'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'critical'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'session_outcome', c.session_outcome,
        'booking_id', c.booking_id,
        'claimed_seconds_ago', floor(extract(EPOCH FROM now() - greatest(c.created_at, c.updated_at)))
    ) AS detail,
    'I4_booked_outcome'::text AS rule_id
FROM public.calls AS c
WHERE
    (c.appointment_made OR c.session_outcome = 'appointment_booked')
    AND greatest(c.created_at, c.updated_at) < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    )
    AND NOT EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND guard.is_active_appointment(a.status, a.deleted_at)
    );

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_booking_failure_anomaly;

-- I7, check booking_failure_anomaly of rule I7_booking_failures: a company whose booking-failure
-- rate in the recent window (failure_window_minutes) is anomaly_factor times its usual rate for
-- that hour of the week, the usual rate being the same window 1 to 4 weeks earlier. Fewer than
-- anomaly_min_failures failures never count. Five index range scans on calls.created_at, whatever
-- the table size. windows is MATERIALIZED so that the join with calls compares two plain columns:
-- under the row-level security of a reporting login, a join condition that computes with the
-- window's columns (timestamp arithmetic is not leakproof) may not be pushed below the tenant
-- policy into the index scan, and calls was read whole (bench/tenant_rls.py).
CREATE VIEW guard.check_booking_failure_anomaly WITH (security_invoker = TRUE) AS
WITH params AS (
    SELECT
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'failure_window_minutes') AS window_minutes,
        max((s.value #>> '{}')::numeric) FILTER (WHERE s.key = 'anomaly_factor') AS factor,
        max((s.value #>> '{}')::integer) FILTER (WHERE s.key = 'anomaly_min_failures') AS min_failures
    FROM guard.settings AS s
    WHERE s.key IN ('failure_window_minutes', 'anomaly_factor', 'anomaly_min_failures')
),

windows AS MATERIALIZED (
    SELECT
        w.weeks_ago,
        now() - make_interval(days => 7 * w.weeks_ago) - make_interval(mins => p.window_minutes) AS starts,
        now() - make_interval(days => 7 * w.weeks_ago) AS ends
    FROM params AS p
    CROSS JOIN generate_series(0, 4) AS w (weeks_ago)
),

counted AS (
    SELECT
        c.company_id,
        w.weeks_ago,
        count(*) AS calls,
        count(*) FILTER (WHERE c.session_outcome = 'creation_failed' OR c.booking_failed) AS failures
    FROM windows AS w
    INNER JOIN public.calls AS c ON w.starts <= c.created_at AND w.ends > c.created_at
    GROUP BY c.company_id, w.weeks_ago
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

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_booking_outcome_unknown;

-- I7, check booking_outcome_unknown of rule I7_booking_failures: a booking attempt that called the
-- calendar and never finished. Still calling after booking_attempt_timeout_seconds (the process
-- died, the database went away between the calendar's answer and the recording), or already marked
-- unknown by reconcile and not yet settled. The calendar may hold a booking the database does not
-- know; the idempotency key lets a person (or recover_attempts) ask the calendar.
CREATE VIEW guard.check_booking_outcome_unknown WITH (security_invoker = TRUE) AS
SELECT
    'booking_outcome_unknown'::text AS check_id,
    b.company_id,
    'booking_attempt'::text AS entity_type,
    b.id AS entity_id,
    b.call_id,
    'critical'::text AS severity,
    b.created_at AS observed_at,
    jsonb_build_object(
        'idempotency_key', b.idempotency_key,
        'service_id', b.service_id,
        'state', b.state,
        'started_by', b.started_by,
        'calling_seconds', floor(extract(EPOCH FROM now() - b.created_at))
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM guard.booking_attempts AS b
WHERE
    b.state = 'unknown'
    OR (
        b.state = 'calling'
        AND b.created_at < now() - make_interval(
            secs => (
                SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
                WHERE s.key = 'booking_attempt_timeout_seconds'
            )
        )
    );

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_call_without_direction;

-- I1, check call_without_direction of rule I1_call_direction: a call without a valid direction
-- (legacy rows only: new writes are normalised and checked).
CREATE VIEW guard.check_call_without_direction WITH (security_invoker = TRUE) AS
SELECT
    'call_without_direction'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'medium'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object('direction', c.direction) AS detail,
    'I1_call_direction'::text AS rule_id
FROM public.calls AS c
WHERE NOT coalesce(c.direction IN ('inbound', 'outbound'), FALSE);

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_cross_tenant_link;

-- I5, check cross_tenant_link of rule I5_tenant_link: an appointment linked to a call of another
-- company. The composite foreign key refuses new ones; this finds those an adopted database already
-- had.
CREATE VIEW guard.check_cross_tenant_link WITH (security_invoker = TRUE) AS
SELECT
    'cross_tenant_link'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'critical'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object('call_company_id', c.company_id) AS detail,
    'I5_tenant_link'::text AS rule_id
FROM public.appointments AS a
INNER JOIN public.calls AS c ON a.call_id = c.id
WHERE c.company_id <> a.company_id;

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_flags_contradict_appointments;

-- I3, check flags_contradict_appointments of rule I3_appointment_flags: a call with an active
-- appointment whose flags do not say so (not made, not linked, another outcome, or marked failed).
CREATE VIEW guard.check_flags_contradict_appointments WITH (security_invoker = TRUE) AS
SELECT
    'flags_contradict_appointments'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'appointment_made', c.appointment_made,
        'appointment_link_status', c.appointment_link_status,
        'session_outcome', c.session_outcome,
        'booking_failed', c.booking_failed
    ) AS detail,
    'I3_appointment_flags'::text AS rule_id
FROM public.calls AS c
WHERE
    EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE a.call_id = c.id AND a.company_id = c.company_id AND guard.is_active_appointment(a.status, a.deleted_at)
    )
    AND NOT coalesce(
        c.appointment_made
        AND c.appointment_link_status = 'linked'
        AND c.session_outcome = 'appointment_booked'
        AND NOT c.booking_failed,
        FALSE
    );

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_orphaned_voice_appointment;

-- I6, check orphaned_voice_appointment of rule I6_voice_appointment_call: an active appointment
-- made by the voice agent (source retell_webhook) that is linked to no call once the grace period
-- is over. The detail counts the calls carrying its booking uid, in its company and in others: what
-- reconcile needs to decide between linking it and queueing it for a person.
CREATE VIEW guard.check_orphaned_voice_appointment WITH (security_invoker = TRUE) AS
SELECT
    'orphaned_voice_appointment'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    NULL::bigint AS call_id,
    'high'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object(
        'booking_uid', a.calcom_v2_booking_id,
        'calls_with_uid_same_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        ),
        'calls_with_uid_other_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id <> a.company_id
        )
    ) AS detail,
    'I6_voice_appointment_call'::text AS rule_id
FROM public.appointments AS a
WHERE
    a.source = 'retell_webhook'
    AND a.call_id IS NULL
    AND guard.is_active_appointment(a.status, a.deleted_at)
    AND a.created_at < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    );

-- squawk-ignore ban-drop-view
DROP VIEW guard.check_recent_booking_failure;

-- I7, check recent_booking_failure of rule I7_booking_failures: a booking that failed within the
-- failure window (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
-- The window's start is a MATERIALIZED CTE so that calls is joined on a plain column: under the
-- row-level security of a reporting login, a condition that holds a sub-select (or computes with
-- another table's columns) is not leakproof, may not be pushed below the tenant policy into the
-- index scan on created_at, and calls was read whole (bench/tenant_rls.py).
CREATE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
WITH failure_window AS MATERIALIZED (
    SELECT now() - make_interval(mins => (s.value #>> '{}')::integer) AS since
    FROM guard.settings AS s
    WHERE s.key = 'failure_window_minutes'
)

SELECT
    'recent_booking_failure'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'session_outcome', c.session_outcome,
        'booking_failure_reason', c.booking_failure_reason,
        'requires_manual_processing', c.requires_manual_processing
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM failure_window AS w
INNER JOIN public.calls AS c ON w.since <= c.created_at
WHERE c.session_outcome = 'creation_failed' OR c.booking_failed;

-- The stored daily reports for BI tools: one row per day and company, with the company's name,
-- the rates as percentages and the trend unpacked. No personal data (no phone numbers).
CREATE OR REPLACE VIEW guard.daily_report_view WITH (security_invoker = TRUE) AS
SELECT
    d.report_date,
    d.company_id,
    co.name AS company_name,
    d.total_calls,
    d.total_calls - d.inconsistent_calls AS consistent_calls,
    d.inconsistent_calls,
    d.inconsistency_rate_pct,
    CASE WHEN d.total_calls > 0 THEN 100 - d.inconsistency_rate_pct END AS consistency_rate_pct,
    d.auto_corrected,
    d.manual_reviews,
    round(100.0 * d.auto_corrected / nullif(d.auto_corrected + d.manual_reviews, 0), 2)
        AS auto_correction_rate_pct,
    d.open_review_items,
    d.top_issues -> 0 ->> 'rule_id' AS top_rule,
    (d.trend ->> 'previous_mean_rate_pct')::numeric AS previous_7_days_rate_pct,
    (d.trend ->> 'delta_pct_points')::numeric AS trend_delta_pct_points,
    d.trend ->> 'direction' AS trend_direction,
    d.by_rule,
    d.top_issues,
    d.generated_at,
    d.by_check
FROM guard.daily_reports AS d
LEFT JOIN public.companies AS co ON d.company_id = co.id;

-- Run every enabled check that has a check view (guard.checks), over one scope, and keep
-- guard.alerts in step:
--   since     rows observed since then (the windowed pass: detect)
--   only_call the rows of one call (check_call); since is then ignored
-- In the windowed pass each check also re-checks the entity of every open alert of that check, so
-- that an alert whose row was fixed is resolved even when the row is older than the window. Alerts
-- are de-duplicated by fingerprint (check:entity_type:entity_id): a repeat within the throttle
-- window (alert_throttle_seconds) bumps occurrences and last_seen_at; a repeat after a longer
-- silence closes the old alert as superseded and opens a new one. Nothing is deleted or rewritten.
-- Passes are serialised by a transaction advisory lock. One row per check, with its rule.
CREATE FUNCTION guard.run_detection(since timestamptz, only_call bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Each check's query is a few index scans; starting parallel workers costs more than it saves
-- (measured: 78 -> about 40 ms per pass over 1 000 000 calls).
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    detection_check record;
    findings guard.finding[];
    throttle interval := make_interval(
        secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer
    );
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view, k.description
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        IF only_call IS NULL THEN
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM (
                    SELECT w.* FROM guard.%1$I AS w WHERE w.observed_at >= $1
                    UNION
                    SELECT k.*
                    FROM guard.%1$I AS k
                    INNER JOIN guard.alerts AS a
                        ON a.entity_type = k.entity_type AND a.entity_id = k.entity_id
                    WHERE a.status = 'open' AND a.check_id = $2
                ) AS v
                $query$,
                detection_check.check_view
            ) INTO findings USING since, detection_check.id;
        ELSE
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM guard.%1$I AS v
                WHERE v.call_id = $1
                $query$,
                detection_check.check_view
            ) INTO findings USING only_call;
        END IF;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := cardinality(findings);

        -- A repeat after a silence longer than the throttle window starts a new alert.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = a.last_seen_at, resolution = 'superseded'
        FROM unnest(findings) AS f
        WHERE
            a.status = 'open'
            AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id
            AND a.last_seen_at < now() - throttle;

        UPDATE guard.alerts AS a
        SET occurrences = a.occurrences + 1, last_seen_at = now()
        FROM unnest(findings) AS f
        WHERE a.status = 'open' AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id;
        GET DIAGNOSTICS repeated = ROW_COUNT;

        INSERT INTO guard.alerts (
            fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            f.check_id || ':' || f.entity_type || ':' || f.entity_id,
            f.check_id,
            f.company_id,
            f.entity_type,
            f.entity_id,
            f.severity,
            detection_check.description,
            f.detail || CASE
                WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                    THEN jsonb_build_object('call_id', f.call_id)
                ELSE '{}'
            END
        FROM unnest(findings) AS f
        ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
        GET DIAGNOSTICS opened = ROW_COUNT;

        -- Open alerts of this check in this scope whose row no longer offends: fixed.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
        WHERE
            a.status = 'open'
            AND a.check_id = detection_check.id
            AND (
                only_call IS NULL
                OR (a.entity_type = 'call' AND a.entity_id = only_call)
                OR (
                    a.entity_type = 'appointment'
                    AND a.entity_id IN (
                        SELECT ap.id FROM public.appointments AS ap WHERE ap.call_id = only_call
                    )
                )
            )
            AND a.fingerprint NOT IN (
                SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id FROM unnest(findings) AS f
            );
        GET DIAGNOSTICS resolved = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- One detection pass over the recent window (detection_window_minutes): what the detect job
-- runs every 5 minutes and `guard check` runs on demand. Returns a summary per check.
CREATE FUNCTION guard.detect()
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    SELECT d.check_id, d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(
        now() - make_interval(mins => (guard.setting('detection_window_minutes') #>> '{}')::integer),
        NULL
    ) AS d;
$$;

-- Every check for one call, right now: what application code calls after a booking (the
-- original design's checkCall). Opens, bumps and resolves that call's alerts like detect does.
-- SECURITY DEFINER: the application calls it and may not write alerts itself (run_detection
-- stays SECURITY INVOKER and runs here with the owner's rights); a session with a tenant set may
-- only check that tenant's calls.
-- A NULL call is refused: run_detection reads it as "every call of every tenant, whole history",
-- which is the detect job's work (guard check), not something one application request may start.
-- An unknown call is refused too, so a typo is an error and not an empty, reassuring answer.
CREATE FUNCTION guard.check_call(call_id bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    call_company bigint;
BEGIN
    IF check_call.call_id IS NULL THEN
        RAISE EXCEPTION 'check_call needs a call id'
            USING
                ERRCODE = 'null_value_not_allowed',
                HINT = 'every check over every call is the detect job (guard check, guard.detect())';
    END IF;
    SELECT c.company_id INTO call_company
    FROM public.calls AS c WHERE c.id = check_call.call_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', check_call.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(call_company);
    RETURN QUERY
    SELECT d.check_id, d.rule_id, d.offending, d.opened, d.repeated, d.resolved
    FROM guard.run_detection(NULL, check_call.call_id) AS d;
END;
$$;

-- One batch of a detection pass over the whole history (`guard check --all`): every enabled check
-- over the rows observed in [since, until), opening and bumping alerts exactly as run_detection
-- does. It never resolves: a batch cannot tell a fixed row from one outside its range, so the
-- caller ends with an ordinary windowed pass (guard.detect()), which re-checks every open alert.
-- Batches keep each transaction, and the detection lock it holds, short on a large history.
CREATE FUNCTION guard.detect_between(since timestamptz, until timestamptz)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    detection_check record;
    findings guard.finding[];
    throttle interval := make_interval(
        secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer
    );
BEGIN
    IF since IS NULL OR until IS NULL OR since >= until THEN
        RAISE EXCEPTION 'detect_between needs since < until (got % and %)', since, until
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view, k.description
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        EXECUTE format(
            $query$
            SELECT coalesce(array_agg(ROW(
                v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                v.observed_at, v.detail
            )::guard.finding), '{}')
            FROM guard.%1$I AS v
            WHERE v.observed_at >= $1 AND v.observed_at < $2
            $query$,
            detection_check.check_view
        ) INTO findings USING since, until;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := cardinality(findings);

        -- As in run_detection: a repeat after a silence longer than the throttle window starts
        -- a new alert.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = a.last_seen_at, resolution = 'superseded'
        FROM unnest(findings) AS f
        WHERE
            a.status = 'open'
            AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id
            AND a.last_seen_at < now() - throttle;

        UPDATE guard.alerts AS a
        SET occurrences = a.occurrences + 1, last_seen_at = now()
        FROM unnest(findings) AS f
        WHERE a.status = 'open' AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id;
        GET DIAGNOSTICS repeated = ROW_COUNT;

        INSERT INTO guard.alerts (
            fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            f.check_id || ':' || f.entity_type || ':' || f.entity_id,
            f.check_id,
            f.company_id,
            f.entity_type,
            f.entity_id,
            f.severity,
            detection_check.description,
            f.detail || CASE
                WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                    THEN jsonb_build_object('call_id', f.call_id)
                ELSE '{}'
            END
        FROM unnest(findings) AS f
        ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
        GET DIAGNOSTICS opened = ROW_COUNT;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Hand due deliveries of one channel to one dispatcher for a lease. SKIP LOCKED: two
-- dispatchers claiming at once never get the same row; the lease (claimed_until) keeps the row
-- theirs after this transaction commits, and lets it go again if that dispatcher dies.
CREATE FUNCTION guard.claim_alert_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (
    alert_id bigint,
    attempts integer,
    check_id text,
    rule_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    severity text,
    message text,
    details jsonb,
    alert_status text,
    occurrences integer,
    first_seen_at timestamptz,
    last_seen_at timestamptz
)
LANGUAGE sql
SET search_path = pg_catalog
AS $$
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_alert_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_alert_deliveries.lease_seconds)
        WHERE (d.alert_id, d.channel) IN (
            SELECT q.alert_id, q.channel
            FROM guard.alert_deliveries AS q
            WHERE
                q.channel = claim_alert_deliveries.delivery_channel
                AND q.status = 'pending'
                AND q.next_attempt_at <= now()
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY q.next_attempt_at, q.alert_id
            LIMIT claim_alert_deliveries.max_rows
            FOR UPDATE SKIP LOCKED
        )
        RETURNING d.alert_id, d.attempts
    )
    SELECT
        c.alert_id,
        c.attempts,
        a.check_id,
        k.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        a.message,
        a.details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at
    FROM claimed AS c
    LEFT JOIN guard.alerts AS a ON a.id = c.alert_id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
$$;

-- Hand one channel's due resolved notifications to one dispatcher for a lease: deliveries sent
-- while their alert was open whose alert has resolved since. SKIP LOCKED and the lease
-- (claimed_by, claimed_until on the delivered row) as in guard.claim_alert_deliveries; a claim
-- whose send failed is due again when its lease ends. Rows with nothing to announce (the alert
-- had resolved before it was delivered: that message said so) are settled first.
CREATE FUNCTION guard.claim_resolved_deliveries(
    delivery_channel text, worker text, max_rows integer, lease_seconds double precision
)
RETURNS TABLE (
    alert_id bigint,
    attempts integer,
    check_id text,
    rule_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    severity text,
    message text,
    details jsonb,
    alert_status text,
    occurrences integer,
    first_seen_at timestamptz,
    last_seen_at timestamptz,
    resolved_at timestamptz
)
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
#variable_conflict use_column
BEGIN
    UPDATE guard.alert_deliveries AS d
    SET resolved_sent_at = d.delivered_at
    FROM guard.alerts AS a
    WHERE
        a.id = d.alert_id
        AND d.channel = claim_resolved_deliveries.delivery_channel
        AND d.status = 'delivered'
        AND d.resolved_sent_at IS NULL
        AND a.status = 'resolved'
        AND a.resolved_at <= d.delivered_at;

    RETURN QUERY
    WITH claimed AS (
        UPDATE guard.alert_deliveries AS d
        SET
            claimed_by = claim_resolved_deliveries.worker,
            claimed_until = now()
            + make_interval(secs => claim_resolved_deliveries.lease_seconds)
        WHERE (d.alert_id, d.channel) IN (
            SELECT q.alert_id, q.channel
            FROM guard.alert_deliveries AS q
            INNER JOIN guard.alerts AS a ON q.alert_id = a.id
            WHERE
                q.channel = claim_resolved_deliveries.delivery_channel
                AND q.status = 'delivered'
                AND q.resolved_sent_at IS NULL
                AND a.status = 'resolved'
                AND (q.claimed_until IS NULL OR q.claimed_until < now())
            ORDER BY a.resolved_at, q.alert_id
            LIMIT claim_resolved_deliveries.max_rows
            FOR UPDATE OF q SKIP LOCKED
        )
        RETURNING d.alert_id, d.attempts
    )
    SELECT
        c.alert_id,
        c.attempts,
        a.check_id,
        k.rule_id,
        a.company_id,
        a.entity_type,
        a.entity_id,
        a.severity,
        a.message,
        a.details,
        a.status,
        a.occurrences,
        a.first_seen_at,
        a.last_seen_at,
        a.resolved_at
    FROM claimed AS c
    INNER JOIN guard.alerts AS a ON c.alert_id = a.id
    LEFT JOIN guard.checks AS k ON a.check_id = k.id
    ORDER BY c.alert_id;
END;
$$;

-- Raise an operational alert about one job (check job_failed or job_missed of rule job_health).
-- One open alert per check and job: a repeat bumps occurrences and last_seen_at instead of adding
-- a row.
CREATE FUNCTION guard.open_job_alert(
    alert_check text, alert_job text, alert_message text, alert_details jsonb
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO guard.alerts AS a (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
    )
    SELECT
        format('%s:job:%s', k.id, alert_job),
        k.id,
        NULL,
        'job',
        NULL,
        k.severity,
        alert_message,
        alert_details || jsonb_build_object('job', alert_job)
    FROM guard.checks AS k
    WHERE k.id = alert_check AND k.enabled
    ON CONFLICT (fingerprint) WHERE status = 'open'
    DO UPDATE SET occurrences = a.occurrences + 1, last_seen_at = now();
END;
$$;

-- Resolve the open operational alert of one check about one job (its problem has gone).
CREATE FUNCTION guard.resolve_job_alert(alert_check text, alert_job text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    resolved_count integer;
BEGIN
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    WHERE a.fingerprint = format('%s:job:%s', alert_check, alert_job) AND a.status = 'open';
    GET DIAGNOSTICS resolved_count = ROW_COUNT;
    RETURN resolved_count;
END;
$$;

-- The missed-run check, called after every job run: an enabled job without a success within
-- twice its interval raises (or bumps) a job_missed alert; a job that is no longer overdue, or
-- was disabled, has its job_missed alert resolved. Returns the number of overdue jobs.
CREATE OR REPLACE FUNCTION guard.check_job_heartbeats()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    late record;
    overdue_count integer := 0;
BEGIN
    FOR late IN
        SELECT s.job_name, s.interval_seconds, s.last_success_at
        FROM guard.job_status AS s
        WHERE s.overdue
        ORDER BY s.job_name
    LOOP
        PERFORM guard.open_job_alert(
            'job_missed',
            late.job_name,
            format(
                'job %s has not succeeded within %s s (twice its interval); last success: %s',
                late.job_name,
                2 * late.interval_seconds,
                coalesce(late.last_success_at::text, 'never')
            ),
            jsonb_build_object('last_success_at', late.last_success_at)
        );
        overdue_count := overdue_count + 1;
    END LOOP;
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
    FROM guard.job_status AS s
    WHERE
        a.check_id = 'job_missed'
        AND a.status = 'open'
        AND a.fingerprint = format('job_missed:job:%s', s.job_name)
        AND NOT s.overdue;
    RETURN overdue_count;
END;
$$;

-- The daily report of one UTC day, one row per company, stored in guard.daily_reports: running
-- a day again replaces that day's rows (a report, not history). Definitions:
-- total_calls: calls created during the day (UTC). The day's alerts: detection alerts, open or
-- resolved, whenever first seen, about a call created that day (entity_type call, or
-- details.call_id), about an appointment created that day, or about neither (the failure
-- anomaly) first seen that day. inconsistent_calls: the day's calls with at least one of the
-- day's alerts. by_rule: the day's alerts per rule (an alert's rule is its check's rule,
-- guard.checks; `(unknown)` for a check removed since); by_check: the same alerts per check;
-- top_issues: the five rules with most.
-- auto_corrected: correction_audit rows of the day; manual_reviews: review items created during
-- the day; open_review_items: open or claimed items when the report is generated. trend: this
-- day's rate against the mean rate of the reports stored for the 7 days before.
-- Operational alerts (entity_type job, no company) are not part of any company's report.
CREATE OR REPLACE FUNCTION guard.daily_report(report_day date)
RETURNS SETOF guard.daily_reports
LANGUAGE sql
SET search_path = pg_catalog
AS $$
DELETE FROM guard.daily_reports AS d WHERE d.report_date = report_day;

WITH bounds AS (
    SELECT
        timezone('UTC', report_day::timestamp) AS day_start,
        timezone('UTC', (report_day + 1)::timestamp) AS day_end
),

day_calls AS (
    SELECT c.id, c.company_id
    FROM public.calls AS c, bounds AS b
    WHERE c.created_at >= b.day_start AND c.created_at < b.day_end
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
-- alerts about neither (the failure anomaly) first seen that day
day_alerts AS (
    SELECT s.company_id, s.rule_id, s.check_id, s.call_id
    FROM alert_subjects AS s, bounds AS b
    WHERE
        s.company_id IS NOT NULL
        AND CASE
            WHEN s.call_id IS NOT NULL THEN EXISTS (SELECT FROM day_calls AS dc WHERE dc.id = s.call_id)
            WHEN s.entity_type = 'appointment'
                THEN EXISTS (
                    SELECT
                    FROM public.appointments AS ap
                    WHERE
                        ap.id = s.entity_id
                        AND ap.created_at >= b.day_start
                        AND ap.created_at < b.day_end
                )
            ELSE s.first_seen_at < b.day_end
        END
),

call_counts AS (
    SELECT
        dc.company_id,
        count(*) AS total_calls,
        count(*) FILTER (
            WHERE EXISTS (SELECT FROM day_alerts AS da WHERE da.call_id = dc.id)
        ) AS inconsistent_calls
    FROM day_calls AS dc
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
                    'description', r.description
                )
                ORDER BY rc.rank
            ) FILTER (WHERE rc.rank <= 5),
            '[]'
        ) AS top_issues
    FROM rule_counts AS rc
    LEFT JOIN guard.rules AS r ON rc.rule_id = r.id
    GROUP BY rc.company_id
),

corrections AS (
    SELECT ca.company_id, count(*) AS corrected
    FROM guard.correction_audit AS ca, bounds AS b
    WHERE ca.corrected_at >= b.day_start AND ca.corrected_at < b.day_end
    GROUP BY ca.company_id
),

reviews AS (
    SELECT
        ri.company_id,
        count(*) FILTER (
            WHERE ri.created_at >= b.day_start AND ri.created_at < b.day_end
        ) AS created,
        count(*) FILTER (WHERE ri.status IN ('open', 'claimed')) AS still_open
    FROM guard.review_items AS ri, bounds AS b
    GROUP BY ri.company_id
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
        prev.mean_rate AS previous_mean_rate
    FROM public.companies AS co
    LEFT JOIN call_counts AS cc ON co.id = cc.company_id
    LEFT JOIN corrections AS cr ON co.id = cr.company_id
    LEFT JOIN reviews AS rv ON co.id = rv.company_id
    LEFT JOIN rules_by_company AS rb ON co.id = rb.company_id
    LEFT JOIN checks_by_company AS cb ON co.id = cb.company_id
    CROSS JOIN LATERAL (
        SELECT count(*) AS days, round(avg(p.inconsistency_rate_pct), 2) AS mean_rate
        FROM guard.daily_reports AS p
        WHERE
            p.company_id = co.id
            AND p.report_date >= report_day - 7
            AND p.report_date < report_day
    ) AS prev
)

INSERT INTO guard.daily_reports AS d (
    report_date, company_id, total_calls, inconsistent_calls, inconsistency_rate_pct,
    auto_corrected, manual_reviews, open_review_items, by_rule, top_issues, trend, generated_at,
    by_check
)
SELECT
    report_day,
    rd.company_id,
    rd.total_calls,
    rd.inconsistent_calls,
    rd.rate,
    rd.auto_corrected,
    rd.manual_reviews,
    rd.open_review_items,
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
        END
    ),
    now(),
    rd.by_check
FROM rows_of_day AS rd
ORDER BY rd.company_id
RETURNING d.*;
$$;

-- I1, I3, I4, I5, I6, I7: correct what is safe, queue the rest for a person, guess nothing.
-- In order:
--   booking_outcome_unknown   booking attempts still calling past booking_attempt_timeout_seconds
--                             become unknown: a review item booking_outcome_unknown (the highest
--                             priority) with the idempotency key, call and service, and an alert
--   close_reviewed_attempt    an unknown attempt whose review item a person closed (they settled
--                             it by hand) is closed as failed, naming who closed the item; this
--                             lets the call be booked again
--   fill_direction            calls without a direction (the I1 normaliser fills inbound)
--   link_orphan_appointment   a voice-agent appointment without a call is linked to THE call of
--                             its company carrying its booking uid, when exactly one exists and
--                             no other company has one (the triggers then book the call)
--   rollback_phantom_booking  a call still claiming a booking without an appointment after the
--                             grace period: creation_failed, booking_failed,
--                             requires_manual_processing; queued for review
--   correct_flags             flags that contradict the appointments are derived again
--   review_orphan_appointment an orphan with no call or several calls to choose from
--   review_cross_tenant       an appointment linked to another company's call, or whose only
--                             candidate call belongs to another company
-- At most reconcile_batch_limit rows are changed per run (the next run continues). Every change
-- to a call or appointment is in guard.correction_audit, under the rule id of the invariant it
-- restores (I1_call_direction, not the check call_without_direction that found the row):
-- a correction has one rule id whichever path made it, so the normaliser's and reconcile's fixes
-- of a direction count together. dry_run counts what would be done and changes nothing.
CREATE OR REPLACE FUNCTION guard.reconcile(dry_run boolean DEFAULT FALSE)
RETURNS TABLE (action text, affected integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Like refresh_call_flags: JIT compilation of its large statements costs more than it saves.
SET jit = off
AS $$
DECLARE
    budget integer := (guard.setting('reconcile_batch_limit') #>> '{}')::integer;
    targets bigint[];
    link_appointments bigint[];
    link_calls bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:reconcile', 0));

    -- booking_outcome_unknown. The UPDATE re-checks the state under the row lock: an attempt
    -- its booking process closes meanwhile is left alone.
    SELECT coalesce(array_agg(b.id), '{}') INTO targets
    FROM (
        SELECT a.id
        FROM guard.booking_attempts AS a
        WHERE
            a.state = 'calling'
            AND a.created_at < now() - make_interval(
                secs => (guard.setting('booking_attempt_timeout_seconds') #>> '{}')::integer
            )
        ORDER BY a.created_at, a.id
        LIMIT budget
    ) AS b;
    action := 'booking_outcome_unknown';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH marked AS (
            UPDATE guard.booking_attempts AS b SET state = 'unknown'
            WHERE b.id = ANY (targets) AND b.state = 'calling'
            RETURNING
                b.id, b.company_id, b.call_id, b.service_id, b.idempotency_key, b.started_by,
                b.created_at
        ),

        -- (a data-modifying WITH runs to completion whether or not it is read)
        alerted AS (
            INSERT INTO guard.alerts (
                fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
            )
            SELECT
                'booking_outcome_unknown:booking_attempt:' || m.id,
                'booking_outcome_unknown',
                m.company_id,
                'booking_attempt',
                m.id,
                'critical',
                'a booking attempt never finished: the calendar may hold a booking the database does not know',
                jsonb_build_object(
                    'idempotency_key', m.idempotency_key, 'call_id', m.call_id,
                    'service_id', m.service_id, 'started_at', m.created_at
                )
            FROM marked AS m
            ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
                SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now()
        )

        SELECT count(guard.enqueue_review(
            m.company_id, m.call_id, NULL, 'booking_outcome_unknown',
            jsonb_build_object(
                'idempotency_key', m.idempotency_key, 'attempt_id', m.id,
                'service_id', m.service_id, 'started_at', m.created_at,
                'started_by', m.started_by
            )
        ))::integer INTO affected
        FROM marked AS m;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- close_reviewed_attempt
    SELECT coalesce(array_agg(b.id), '{}') INTO targets
    FROM (
        SELECT a.id
        FROM guard.booking_attempts AS a
        WHERE
            a.state = 'unknown'
            AND NOT EXISTS (
                SELECT FROM guard.review_items AS r
                WHERE
                    r.call_id = a.call_id
                    AND r.reason = 'booking_outcome_unknown'
                    AND r.status IN ('open', 'claimed')
            )
        ORDER BY a.created_at, a.id
        LIMIT greatest(budget, 0)
    ) AS b;
    action := 'close_reviewed_attempt';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH closed AS (
            UPDATE guard.booking_attempts AS b
            SET
                state = 'failed',
                finished_at = now(),
                failure_reason = 'settled in review by ' || coalesce((
                    SELECT r.closed_by FROM guard.review_items AS r
                    WHERE r.call_id = b.call_id AND r.reason = 'booking_outcome_unknown'
                    ORDER BY r.closed_at DESC NULLS LAST, r.id DESC
                    LIMIT 1
                ), 'nobody (no review item)')
            WHERE b.id = ANY (targets) AND b.state = 'unknown'
            RETURNING b.id
        )

        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'manual'
        FROM closed AS c
        WHERE a.status = 'open' AND a.fingerprint = 'booking_outcome_unknown:booking_attempt:' || c.id;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- fill_direction
    SELECT coalesce(array_agg(c.id), '{}') INTO targets
    FROM (
        SELECT v.entity_id AS id FROM guard.check_call_without_direction AS v
        INNER JOIN public.calls AS c ON v.entity_id = c.id
        WHERE guard.normalised_direction(c.direction) IN ('inbound', 'outbound')
        ORDER BY v.entity_id
        LIMIT greatest(budget, 0)
    ) AS c;
    action := 'fill_direction';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT c.id, c.company_id, c.direction FROM public.calls AS c WHERE c.id = ANY (targets)
        ),

        fixed AS (
            UPDATE public.calls AS c SET direction = c.direction
            FROM before_fix AS b WHERE c.id = b.id
            RETURNING c.id, c.direction
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'I1_call_direction', b.company_id, 'call', b.id,
            jsonb_build_object('direction', b.direction), jsonb_build_object('direction', f.direction),
            'reconcile: missing direction'
        FROM before_fix AS b INNER JOIN fixed AS f ON b.id = f.id;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- link_orphan_appointment: exactly one candidate call, in the same company, none elsewhere.
    SELECT coalesce(array_agg(l.appointment_id), '{}'), coalesce(array_agg(l.call_id), '{}')
    INTO link_appointments, link_calls
    FROM (
        SELECT a.id AS appointment_id, min(c.id) AS call_id
        FROM guard.check_orphaned_voice_appointment AS v
        INNER JOIN public.appointments AS a ON v.entity_id = a.id
        INNER JOIN public.calls AS c
            ON c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        WHERE (v.detail ->> 'calls_with_uid_other_company')::integer = 0
        GROUP BY a.id
        HAVING count(*) = 1
        ORDER BY a.id
        LIMIT greatest(budget, 0)
    ) AS l;
    action := 'link_orphan_appointment';
    affected := cardinality(link_appointments);
    IF NOT dry_run AND affected > 0 THEN
        WITH linked AS (
            UPDATE public.appointments AS a SET call_id = l.call_id, updated_at = now()
            FROM unnest(link_appointments, link_calls) AS l (appointment_id, call_id)
            WHERE a.id = l.appointment_id AND a.call_id IS NULL
            RETURNING a.id, a.company_id, a.call_id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'I6_voice_appointment_call', k.company_id, 'appointment', k.id,
            jsonb_build_object('call_id', NULL), jsonb_build_object('call_id', k.call_id),
            'reconcile: the only call of the company with the same booking uid'
        FROM linked AS k;
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- rollback_phantom_booking (after the links above, which recover what can be recovered)
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM (
        -- (a dry run has not linked anything: leave out the calls a link would recover)
        SELECT p.entity_id FROM guard.check_booked_without_appointment AS p
        WHERE NOT (dry_run AND p.entity_id = ANY (link_calls))
        ORDER BY p.entity_id
        LIMIT greatest(budget, 0)
    ) AS v;
    action := 'rollback_phantom_booking';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        WITH before_fix AS (
            SELECT
                c.id, c.company_id, c.session_outcome, c.appointment_made, c.booking_failed,
                c.requires_manual_processing, c.booking_id
            FROM public.calls AS c
            WHERE c.id = ANY (targets)
            FOR NO KEY UPDATE
        ),

        rolled_back AS (
            UPDATE public.calls AS c
            SET
                session_outcome = 'creation_failed',
                appointment_made = FALSE,
                appointment_link_status = CASE WHEN c.appointment_link_status IS NULL THEN NULL ELSE 'unlinked' END,
                booking_confirmed = FALSE,
                booking_failed = TRUE,
                booking_failure_reason = coalesce(
                    c.booking_failure_reason, 'no appointment exists after the grace period'
                ),
                requires_manual_processing = TRUE,
                updated_at = now()
            FROM before_fix AS b
            WHERE c.id = b.id
            RETURNING c.id
        )

        INSERT INTO guard.correction_audit (rule_id, company_id, entity_type, entity_id, before, after, reason)
        SELECT
            'I4_booked_outcome', b.company_id, 'call', b.id,
            jsonb_build_object(
                'session_outcome', b.session_outcome, 'appointment_made', b.appointment_made,
                'booking_failed', b.booking_failed,
                'requires_manual_processing', b.requires_manual_processing
            ),
            jsonb_build_object(
                'session_outcome', 'creation_failed', 'appointment_made', FALSE,
                'booking_failed', TRUE, 'requires_manual_processing', TRUE
            ),
            'reconcile: booked without an appointment after the grace period'
        FROM before_fix AS b INNER JOIN rolled_back AS r ON b.id = r.id;
        PERFORM guard.enqueue_review(
            c.company_id, c.id, NULL, 'calendar_booking_failure',
            jsonb_build_object('booking_id', c.booking_id, 'found_by', 'booked_without_appointment')
        )
        FROM public.calls AS c WHERE c.id = ANY (targets);
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- correct_flags
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM (
        SELECT f.entity_id FROM guard.check_flags_contradict_appointments AS f
        ORDER BY f.entity_id LIMIT greatest(budget, 0)
    ) AS v;
    action := 'correct_flags';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        affected := guard.refresh_call_flags(
            targets, audit_reason => 'reconcile: flags contradicted the appointments'
        );
        budget := budget - affected;
    END IF;
    RETURN NEXT;

    -- review_orphan_appointment: none or several calls to choose from (never guessed).
    SELECT coalesce(array_agg(v.entity_id), '{}') INTO targets
    FROM guard.check_orphaned_voice_appointment AS v
    WHERE
        (v.detail ->> 'calls_with_uid_other_company')::integer = 0
        AND (v.detail ->> 'calls_with_uid_same_company')::integer <> 1
        AND NOT EXISTS (
            SELECT FROM guard.review_items AS r
            WHERE r.appointment_id = v.entity_id AND r.status IN ('open', 'claimed')
        );
    action := 'review_orphan_appointment';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        PERFORM guard.enqueue_review(
            v.company_id, NULL, v.entity_id, 'other',
            v.detail || jsonb_build_object('problem', 'orphaned_voice_appointment')
        )
        FROM guard.check_orphaned_voice_appointment AS v
        WHERE v.entity_id = ANY (targets);
    END IF;
    RETURN NEXT;

    -- review_cross_tenant: linked across companies, or the only candidate is in another
    -- company. Never corrected: which company is right is a person's call.
    SELECT coalesce(array_agg(t.entity_id), '{}') INTO targets
    FROM (
        SELECT x.entity_id FROM guard.check_cross_tenant_link AS x
        UNION
        SELECT o.entity_id FROM guard.check_orphaned_voice_appointment AS o
        WHERE (o.detail ->> 'calls_with_uid_other_company')::integer > 0
    ) AS t
    WHERE NOT EXISTS (
        SELECT FROM guard.review_items AS r
        WHERE r.appointment_id = t.entity_id AND r.status IN ('open', 'claimed')
    );
    action := 'review_cross_tenant';
    affected := cardinality(targets);
    IF NOT dry_run AND affected > 0 THEN
        PERFORM guard.enqueue_review(
            a.company_id, NULL, a.id, 'other',
            jsonb_build_object(
                'problem', CASE WHEN a.call_id IS NULL THEN 'cross_tenant_candidate' ELSE 'cross_tenant_link' END,
                'booking_uid', a.calcom_v2_booking_id,
                'linked_call_id', a.call_id
            )
        )
        FROM public.appointments AS a
        WHERE a.id = ANY (targets);
    END IF;
    RETURN NEXT;
END;
$$;

-- I3, I4: correct the booking flags of calls that someone else wrote (the application's writes
-- checked at commit, reconcile, `guard db validate`), from their active appointments
-- (guard.call_flags_to_correct derives them). Each correction is audited with before and after
-- and one alert per company is raised or bumped. Returns the number of calls corrected.
-- The appointment triggers derive flags themselves (guard.sync_flags_after_appointment_*):
-- nothing to audit there.
-- SECURITY DEFINER: it writes the correction audit and alerts, which the application may not
-- write itself; it is not granted to the application (its callers are definer functions and
-- the owner's jobs).
CREATE OR REPLACE FUNCTION guard.refresh_call_flags(call_ids bigint[], audit_reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compiles this function's large statement for longer than it runs (bench/triggers.py:
-- a 10 000-row delete took 1.7 s with JIT, 0.3 s without).
SET jit = off
-- Custom plans re-plan the big statement on every call, and PostgreSQL kept choosing them
-- (bench/instructions.py); the generic plan is index lookups joined by nested loops, linear in
-- the number of calls.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    corrected integer;
BEGIN
    IF audit_reason IS NULL THEN
        RAISE EXCEPTION 'a correction needs a reason for its audit'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A session with a tenant set may only touch that tenant's calls.
    IF guard.current_company() IS NOT NULL THEN
        PERFORM guard.assert_tenant(c.company_id)
        FROM public.calls AS c
        WHERE c.id = ANY (call_ids) AND c.company_id IS DISTINCT FROM guard.current_company();
    END IF;
    -- Lock the calls first, in id order, and look at their appointments in the next statement
    -- (see guard.sync_flags_after_appointment_delete).
    PERFORM FROM public.calls AS c WHERE c.id = ANY (call_ids) ORDER BY c.id FOR NO KEY UPDATE;

    -- RETURNING f.*: the FROM side holds each call's flags as they were before this UPDATE.
    WITH changed AS (
        UPDATE public.calls AS c
        SET
            appointment_made = f.new_made,
            appointment_link_status = f.new_link_status,
            appointment_linked_at = f.new_linked_at,
            session_outcome = f.new_outcome,
            booking_failed = f.new_failed,
            booking_confirmed = f.new_confirmed,
            -- A correction that leaves a booking claim without an appointment standing (a
            -- phantom booking: outcome booked, now made = false) keeps the call's updated_at:
            -- the grace period counts from the claim, and restarting it hid the phantom from
            -- detection for another grace period after every reconcile (guard db validate).
            updated_at = CASE
                WHEN f.new_outcome = 'appointment_booked' AND NOT f.new_made THEN c.updated_at
                ELSE now()
            END
        FROM guard.call_flags_to_correct(call_ids, FALSE) AS f
        WHERE c.ctid = f.row_id
        RETURNING f.*
    ),

    audited AS (
        INSERT INTO guard.correction_audit (
            rule_id, company_id, entity_type, entity_id, before, after, reason, actor
        )
        SELECT
            'I3_appointment_flags',
            ch.company_id,
            'call',
            ch.id,
            jsonb_build_object(
                'appointment_made', ch.old_made,
                'appointment_link_status', ch.old_link_status,
                'appointment_linked_at', ch.old_linked_at,
                'session_outcome', ch.old_outcome,
                'booking_failed', ch.old_failed,
                'booking_confirmed', ch.old_confirmed
            ),
            jsonb_build_object(
                'appointment_made', ch.new_made,
                'appointment_link_status', ch.new_link_status,
                'appointment_linked_at', ch.new_linked_at,
                'session_outcome', ch.new_outcome,
                'booking_failed', ch.new_failed,
                'booking_confirmed', ch.new_confirmed
            ),
            audit_reason,
            session_user  -- who wrote: current_user is the owner here (SECURITY DEFINER)
        FROM changed AS ch
        RETURNING company_id, entity_id
    ),

    alerted AS (
        INSERT INTO guard.alerts (
            fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
        )
        SELECT
            'flags_corrected_on_write:company:' || au.company_id,
            'flags_corrected_on_write',
            au.company_id,
            'company',
            au.company_id,
            'medium',
            'booking flags that contradicted the appointments were corrected',
            jsonb_build_object(
                'corrected_calls', count(*),
                'sample_call_ids', (array_agg(au.entity_id ORDER BY au.entity_id))[1:10],
                'reason', audit_reason
            )
        FROM audited AS au
        GROUP BY au.company_id
        ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
            SET
                occurrences = guard.alerts.occurrences + 1,
                last_seen_at = now(),
                details = excluded.details
        RETURNING 1
    )

    SELECT count(*) INTO corrected FROM changed;
    RETURN corrected;
END;
$$;

-- I7, the booking journal and the booking path.
-- Undo a booking that failed, atomically in the caller's transaction: lock the call row (a
-- concurrent writer waits, and this sees its outcome), mark the call failed and for manual
-- processing, raise an alert and queue a review item. The flags are left alone when the call
-- still has an active appointment (an earlier booking stands); the alert and review item are
-- raised either way. reason is the review reason (validation_failure,
-- calendar_booking_failure, customer_creation_failure, service_not_found, other); context is
-- what a reviewer needs (no phone numbers). Returns the review item's id.
-- SECURITY DEFINER: the application calls it and may not write alerts or review items itself;
-- a session with a tenant set may only roll back that tenant's calls.
-- Alert and review details are JSON objects (a CHECK on guard.alerts): a context that is not an
-- object (a string, an array, JSON null) is kept, wrapped as {"context": <value>}, rather than
-- refused, because refusing would lose the rollback of a booking that already went wrong. Its
-- keys never replace reason and still_booked. A NULL call or reason, an unknown call and a
-- reason that is not a review reason are refused with an error, and nothing is written.
CREATE OR REPLACE FUNCTION guard.rollback_booking(call_id bigint, reason text, context jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    the_call record;
    still_booked boolean;
    context_object jsonb := CASE
        WHEN rollback_booking.context IS NULL THEN '{}'::jsonb
        WHEN jsonb_typeof(rollback_booking.context) = 'object' THEN rollback_booking.context
        ELSE jsonb_build_object('context', rollback_booking.context)
    END;
BEGIN
    IF rollback_booking.call_id IS NULL OR rollback_booking.reason IS NULL THEN
        RAISE EXCEPTION 'rollback_booking needs a call id and a review reason'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.id, c.company_id INTO the_call
    FROM public.calls AS c WHERE c.id = rollback_booking.call_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % does not exist', rollback_booking.call_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM guard.assert_tenant(the_call.company_id);
    still_booked := EXISTS (
        SELECT
        FROM public.appointments AS a
        WHERE
            a.call_id = the_call.id
            AND a.company_id = the_call.company_id
            AND guard.is_active_appointment(a.status, a.deleted_at)
    );
    IF NOT still_booked THEN
        UPDATE public.calls AS c
        SET
            session_outcome = 'creation_failed',
            booking_failed = TRUE,
            booking_confirmed = FALSE,
            booking_failure_reason = rollback_booking.reason,
            requires_manual_processing = TRUE,
            updated_at = now()
        WHERE c.id = the_call.id;
    END IF;

    INSERT INTO guard.alerts (
        fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
    ) VALUES (
        'booking_rolled_back:call:' || the_call.id,
        'booking_rolled_back',
        the_call.company_id,
        'call',
        the_call.id,
        'high',
        'a booking failed and was rolled back; a review item is queued',
        context_object
        || jsonb_build_object('reason', rollback_booking.reason, 'still_booked', still_booked)
    )
    ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE
        SET occurrences = guard.alerts.occurrences + 1, last_seen_at = now();

    -- The review item's CHECK knows the reasons; an unknown one undoes everything above.
    BEGIN
        RETURN guard.enqueue_review(
            the_call.company_id, the_call.id, NULL, rollback_booking.reason,
            context_object || jsonb_build_object('still_booked', still_booked)
        );
    EXCEPTION WHEN check_violation THEN
        RAISE EXCEPTION 'unknown review reason "%"', rollback_booking.reason
            USING
                ERRCODE = 'invalid_parameter_value',
                HINT = 'validation_failure, calendar_booking_failure, customer_creation_failure,'
                || ' service_not_found or other';
    END;
END;
$$;

-- (Re)apply Booking Guard's ownership and privileges from guard.role_names: every object in
-- schema guard is handed to the owner role, PUBLIC loses EXECUTE on the guard functions, and the
-- application, reporting and reviewer roles get exactly what docs/security.md lists. Every
-- migration that creates or re-creates an object in schema guard ends with a DO block that
-- runs PERFORM guard.apply_grants(), so ownership and grants survive DROP and CREATE (CREATE OR
-- REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's own grants away
-- (guard db verify reports those). Run by the migrating user, a member of the owner role.
CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    owner_role text := guard.role('owner');
    app_role text := guard.role('application');
    reader text;
    obj record;
    -- public.calls as reporting may read it: every column Booking Guard knows but the phone numbers
    calls_columns text;
    appointments_columns text;
BEGIN
    -- Ownership: the schema and everything in it. Sequences of identity columns and row types of
    -- tables follow their table.
    IF (SELECT n.nspowner::regrole::text FROM pg_namespace AS n WHERE n.nspname = 'guard')
        IS DISTINCT FROM quote_ident(owner_role) THEN
        EXECUTE format('ALTER SCHEMA guard OWNER TO %I', owner_role);
    END IF;
    FOR obj IN
        SELECT
            CASE c.relkind
                WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE'
                WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE'
            END AS object_type,
            c.oid::regclass::text AS object_name
        FROM pg_class AS c
        WHERE
            c.relnamespace = 'guard'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND c.relowner <> to_regrole(quote_ident(owner_role))
            AND NOT EXISTS (
                SELECT FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            )
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text
        FROM pg_proc AS p
        WHERE p.pronamespace = 'guard'::regnamespace AND p.proowner <> to_regrole(quote_ident(owner_role))
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text
        FROM pg_type AS t
        LEFT JOIN pg_class AS r ON t.typrelid = r.oid
        WHERE
            t.typnamespace = 'guard'::regnamespace
            AND t.typowner <> to_regrole(quote_ident(owner_role))
            AND t.typelem = 0
            AND (t.typrelid = 0 OR r.relkind = 'c')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.object_type, obj.object_name, owner_role);
    END LOOP;

    -- Nothing for PUBLIC: a function is EXECUTE-able by PUBLIC unless revoked.
    REVOKE ALL ON SCHEMA guard FROM PUBLIC;
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA guard FROM PUBLIC;
    -- Functions the owner role creates later start without PUBLIC's EXECUTE too. (A per-schema
    -- default cannot take away the global default's EXECUTE, hence no IN SCHEMA.)
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', owner_role
    );

    -- The owner role: what its SECURITY DEFINER functions, detection, reconciliation and the
    -- jobs read and correct on the application's tables.
    EXECUTE format('GRANT SELECT, UPDATE ON TABLE public.calls, public.appointments TO %I', owner_role);
    EXECUTE format('GRANT SELECT ON TABLE public.companies TO %I', owner_role);

    -- The application: its own booking tables, the settings its triggers read, and the
    -- functions it calls (directly, or through the triggers on calls and appointments).
    EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', app_role);
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.companies, public.customers,'
        ' public.services, public.calls, public.appointments TO %I',
        app_role
    );
    EXECUTE format('GRANT SELECT ON TABLE guard.settings, guard.rules TO %I', app_role);
    -- The calls triggers run with the writer's rights: they record a contradicting write of the
    -- booking flags for the commit-time check, and nothing else (no reading or removing one).
    EXECUTE format(
        'GRANT INSERT (call_ids, written_by) ON TABLE guard.flag_checks_at_commit TO %I', app_role
    );
    FOR obj IN
        SELECT f.signature::regprocedure::text AS object_name
        FROM unnest(ARRAY[
            'guard.setting(text)',
            'guard.current_company()',
            'guard.validate_booking(bigint, bigint, text)',
            'guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)',
            'guard.rollback_booking(bigint, text, jsonb)',
            'guard.check_call(bigint)',
            -- the derived booking flags, read in place by the appointment triggers (invoker
            -- rights: they update calls as the application would)
            'guard.call_flags_to_correct(bigint[], boolean)',
            -- "active appointment", inlined into the statements that ask (an inlined function
            -- still needs EXECUTE)
            'guard.is_active_appointment(text, anyelement)',
            -- the stored direction, inlined into the normaliser that runs with the writer's rights
            'guard.normalised_direction(text)',
            -- the booking journal (guard.booking_attempts), written only through these
            'guard.begin_booking_attempt(bigint, bigint)',
            'guard.complete_booking_attempt(text, bigint, text)',
            'guard.fail_booking_attempt(text, text, jsonb)',
            'guard.unsettled_booking_attempts(integer, integer)',
            -- breaker history, written behind by the application's breakers (they may not
            -- write guard.breaker_events / guard.breaker_state themselves)
            'guard.record_breaker_transitions(jsonb)'
        ]) AS f (signature)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, app_role);
    END LOOP;

    -- Reporting and reviewer: read-only, the BI views and, because those views are
    -- security_invoker, the tables behind them (row-level security limits both to the companies
    -- bound to the role, guard.tenant_bindings);
    -- never the raw phone numbers.
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO calls_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'retell_call_id', 'status', 'direction', 'customer_id',
        'customer_link_status', 'customer_link_method', 'customer_link_confidence',
        'customer_linked_at', 'session_outcome', 'appointment_made', 'appointment_link_status',
        'appointment_linked_at', 'booking_id', 'booking_details', 'booking_confirmed',
        'booking_failed', 'booking_failure_reason', 'requires_manual_processing', 'created_at',
        'updated_at'
    ]) WITH ORDINALITY AS col (name, ord);
    SELECT string_agg(format('%I', col.name), ', ' ORDER BY col.ord) INTO appointments_columns
    FROM unnest(ARRAY[
        'id', 'company_id', 'call_id', 'customer_id', 'service_id', 'calcom_v2_booking_id',
        'source', 'status', 'starts_at', 'ends_at', 'created_at', 'updated_at', 'deleted_at'
    ]) WITH ORDINALITY AS col (name, ord);
    FOREACH reader IN ARRAY ARRAY[guard.role('reporting'), guard.role('reviewer')] LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA guard TO %I', reader);
        FOR obj IN
            SELECT c.oid::regclass::text AS object_name
            FROM pg_class AS c
            WHERE
                c.relnamespace = 'guard'::regnamespace
                AND (
                    (c.relkind = 'v' AND c.relname LIKE 'check\_%')
                    OR c.relname IN (
                        'daily_report_view', 'kpis', 'validation_latency_daily', 'job_status',
                        'calls_report', 'alerts', 'review_items', 'daily_reports',
                        'correction_audit', 'validation_metrics', 'breaker_events', 'settings',
                        'jobs', 'job_runs',
                        -- the registries: an alert's check_id leads to its check and rule
                        'rules', 'checks',
                        -- read by the security_invoker view check_booking_outcome_unknown
                        'booking_attempts',
                        -- tenants: guard.visible_companies reads the bindings with the
                        -- reader's rights (a policy shows each role only its own)
                        'tenant_bindings'
                    )
                )
            ORDER BY 1
        LOOP
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj.object_name, reader);
        END LOOP;
        EXECUTE format('GRANT SELECT (id, name) ON TABLE public.companies TO %I', reader);
        EXECUTE format('GRANT SELECT (%s) ON TABLE public.calls TO %I', calls_columns, reader);
        EXECUTE format(
            'GRANT SELECT (%s) ON TABLE public.appointments TO %I', appointments_columns, reader
        );
        EXECUTE format(
            'GRANT EXECUTE ON FUNCTION guard.current_company(), guard.setting(text),'
            ' guard.mask_phone(text) TO %I',
            reader
        );
        -- tenants: the row-level security policies and guard.calls_report call it as the reader;
        -- the detection views call is_active_appointment (found in the catalog, like the
        -- relations above: nothing to grant before it exists)
        FOR obj IN
            SELECT p.oid::regprocedure::text AS object_name
            FROM pg_proc AS p
            WHERE
                p.pronamespace = 'guard'::regnamespace
                AND p.proname IN ('visible_companies', 'is_active_appointment')
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.object_name, reader);
        END LOOP;
    END LOOP;

    -- Reviewer: works the review queue of its companies (review_claim and review_close run with
    -- its rights, under row-level security). claimed_by and closed_by are its free-text labels;
    -- the login is recorded in claimed_by_role and closed_by_role by a trigger, not granted.
    EXECUTE format(
        'GRANT UPDATE (status, claimed_by, claimed_at, closed_by, closed_at, note, false_positive)'
        ' ON TABLE guard.review_items TO %I',
        guard.role('reviewer')
    );
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION guard.review_claim(text, integer),'
        ' guard.review_close(bigint, text, text, text, boolean) TO %I',
        guard.role('reviewer')
    );
END;
$$;

-- Last: the application's commit-time check reads guard.rules (I3's mode).
DELETE FROM guard.rules AS r
WHERE r.id IN (SELECT k.id FROM guard.checks AS k);

-- squawk-ignore ban-drop-column
ALTER TABLE guard.rules DROP COLUMN check_view;

DO $$ BEGIN PERFORM guard.apply_grants(); END $$;
