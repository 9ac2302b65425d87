-- The toolkit's own tables: settings, rule registry, alerts (an outbox), review queue, breaker
-- state and events, validation metrics, daily reports and the correction audit.
-- Time-series tables (alerts, breaker events, validation metrics, correction audit) have no
-- foreign keys pointing at them and an index on their time column, so they can later be
-- partitioned by month and retired by dropping partitions.

CREATE TABLE guard.settings (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    value_type text NOT NULL CHECK (value_type IN ('integer', 'number', 'boolean', 'text')),
    description text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settings_value_matches_type CHECK (
        CASE value_type
            WHEN 'integer' THEN jsonb_typeof(value) = 'number' AND value::text ~ '^-?[0-9]+$'
            WHEN 'number' THEN jsonb_typeof(value) = 'number'
            WHEN 'boolean' THEN jsonb_typeof(value) = 'boolean'
            ELSE jsonb_typeof(value) = 'string'
        END
    )
);

INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'grace_period_seconds', '300', 'integer',
    'How long a call may claim appointment_booked before an appointment exists.'
),
(
    'alert_throttle_seconds', '300', 'integer',
    'A repeat of an open alert inside this window bumps it instead of adding a row.'
),
(
    'validation_recent_seconds', '300', 'integer',
    'validate_booking: an appointment older than this is not the one just booked.'
),
(
    'failure_window_minutes', '60', 'integer',
    'Window of recent booking failures that detection reports.'
),
(
    'anomaly_factor', '3.0', 'number',
    'A failure rate this many times the usual rate for the hour of the week raises an alert.'
),
(
    'anomaly_min_failures', '5', 'integer',
    'Fewer failures than this in the window never count as an anomaly.'
),
(
    'reconcile_batch_limit', '1000', 'integer',
    'At most this many rows are corrected by one reconcile run.'
),
(
    'default_customer_link_method', '"phone_match"', 'text',
    'customer_link_method given to a linked customer that names none.'
),
(
    'default_customer_link_confidence', '100.00', 'number',
    'customer_link_confidence given to a linked customer that names none (0-100).'
),
(
    'breaker_failure_threshold', '3', 'integer',
    'Consecutive failures that open a circuit.'
),
(
    'breaker_cooldown_seconds', '30', 'integer',
    'Time an open circuit waits before it admits a probe.'
),
(
    'breaker_success_threshold', '2', 'integer',
    'Successful probes that close a half-open circuit.'
),
(
    'breaker_call_timeout_seconds', '10', 'integer',
    'Timeout of a guarded call, and the lease of a half-open probe.'
),
('retention_alerts_days', '90', 'integer', 'Resolved alerts older than this are deleted.'),
('retention_breaker_events_days', '90', 'integer', 'Breaker events older than this are deleted.'),
(
    'retention_validation_metrics_days', '30', 'integer',
    'Validation latency samples older than this are deleted.'
),
('retention_job_runs_days', '7', 'integer', 'pg_cron run details older than this are deleted.'),
('target_consistency_rate_pct', '99.5', 'number', 'KPI target: consistent calls, percent.'),
('target_auto_correction_rate_pct', '90', 'number', 'KPI target: problems fixed automatically.'),
('target_validation_p95_ms', '100', 'number', 'KPI target: validate_booking latency p95.');

CREATE TABLE guard.rules (
    id text PRIMARY KEY,
    invariant text CHECK (invariant ~ '^I[0-9]+$'),
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    description text NOT NULL,
    remedy text NOT NULL CHECK (remedy IN ('auto_fix', 'review', 'report')),
    mode text NOT NULL DEFAULT 'correct' CHECK (mode IN ('correct', 'reject')),
    stage text NOT NULL DEFAULT 'observe' CHECK (stage IN ('observe', 'correct', 'enforce')),
    check_view text,
    constraint_names text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT TRUE,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE guard.alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint text NOT NULL,
    rule_id text NOT NULL,
    company_id bigint,
    entity_type text NOT NULL,
    entity_id bigint,
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences > 0),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution text CHECK (resolution IN ('fixed', 'superseded', 'manual')),
    delivered_at timestamptz,
    CONSTRAINT alerts_resolved_has_time CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT alerts_resolved_has_resolution CHECK ((status = 'resolved') = (resolution IS NOT NULL))
);

CREATE UNIQUE INDEX alerts_one_open_per_fingerprint ON guard.alerts (fingerprint)
WHERE status = 'open';

CREATE INDEX alerts_first_seen_at_idx ON guard.alerts (first_seen_at);

CREATE INDEX alerts_open_by_rule_idx ON guard.alerts (rule_id, entity_type, entity_id)
WHERE status = 'open';

CREATE INDEX alerts_undelivered_idx ON guard.alerts (id) WHERE delivered_at IS NULL;

CREATE TABLE guard.review_items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    reason text NOT NULL CHECK (
        reason IN (
            'validation_failure', 'calendar_booking_failure', 'customer_creation_failure',
            'service_not_found', 'other'
        )
    ),
    priority smallint GENERATED ALWAYS AS (
        CASE reason
            WHEN 'validation_failure' THEN 1
            WHEN 'calendar_booking_failure' THEN 2
            WHEN 'customer_creation_failure' THEN 3
            WHEN 'service_not_found' THEN 4
            ELSE 5
        END
    ) STORED,
    details jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'open' CHECK (
        status IN ('open', 'claimed', 'resolved', 'dismissed')
    ),
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_at timestamptz,
    closed_by text,
    closed_at timestamptz,
    note text,
    false_positive boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT review_items_claim_is_complete CHECK (
        (status = 'claimed') <= (claimed_by IS NOT NULL AND claimed_at IS NOT NULL)
    ),
    CONSTRAINT review_items_close_is_complete CHECK (
        (status IN ('resolved', 'dismissed')) = (closed_at IS NOT NULL)
    )
);

CREATE UNIQUE INDEX review_items_one_open_per_call_reason ON guard.review_items (call_id, reason)
WHERE status IN ('open', 'claimed') AND call_id IS NOT NULL;

CREATE UNIQUE INDEX review_items_one_open_per_appointment_reason
ON guard.review_items (appointment_id, reason)
WHERE status IN ('open', 'claimed') AND call_id IS NULL AND appointment_id IS NOT NULL;

CREATE INDEX review_items_queue_idx ON guard.review_items (priority, created_at)
WHERE status = 'open';

CREATE TABLE guard.breaker_state (
    key text PRIMARY KEY,
    state text NOT NULL CHECK (
        state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled')
    ),
    generation bigint NOT NULL,
    failure_count integer NOT NULL DEFAULT 0,
    success_count integer NOT NULL DEFAULT 0,
    opened_at timestamptz,
    changed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE guard.breaker_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL,
    generation bigint NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    reason text NOT NULL,
    failure_count integer NOT NULL DEFAULT 0,
    success_count integer NOT NULL DEFAULT 0,
    actor text,
    host text NOT NULL,
    pid integer NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT breaker_events_key_generation_key UNIQUE (key, generation)
);

CREATE INDEX breaker_events_occurred_at_idx ON guard.breaker_events (occurred_at);

CREATE TABLE guard.validation_metrics (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    ok boolean NOT NULL,
    failure_reason text,
    latency_ms double precision NOT NULL CHECK (latency_ms >= 0),
    measured_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX validation_metrics_measured_at_idx ON guard.validation_metrics (measured_at);

CREATE TABLE guard.daily_reports (
    report_date date NOT NULL,
    company_id bigint NOT NULL,
    total_calls integer NOT NULL,
    inconsistent_calls integer NOT NULL,
    inconsistency_rate_pct numeric(6, 2) NOT NULL,
    auto_corrected integer NOT NULL,
    manual_reviews integer NOT NULL,
    open_review_items integer NOT NULL,
    by_rule jsonb NOT NULL DEFAULT '{}',
    top_issues jsonb NOT NULL DEFAULT '[]',
    trend jsonb NOT NULL DEFAULT '{}',
    generated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report_date, company_id)
);

CREATE TABLE guard.correction_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id text NOT NULL,
    company_id bigint,
    entity_type text NOT NULL,
    entity_id bigint NOT NULL,
    before jsonb,
    after jsonb,
    reason text NOT NULL,
    actor text NOT NULL DEFAULT current_user,
    corrected_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX correction_audit_corrected_at_idx ON guard.correction_audit (corrected_at);

CREATE INDEX correction_audit_entity_idx ON guard.correction_audit (entity_type, entity_id);

-- Read one setting; a missing key is an error, never a silent NULL.
CREATE FUNCTION guard.setting(setting_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, guard
AS $$
DECLARE
    found_value jsonb;
BEGIN
    SELECT s.value INTO found_value FROM guard.settings AS s WHERE s.key = setting_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard setting "%"', setting_key
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN found_value;
END;
$$;

-- Keep updated_at true when a DBA tunes a setting or a rule.
CREATE FUNCTION guard.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER settings_touch_updated_at
BEFORE UPDATE ON guard.settings
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();

CREATE TRIGGER rules_touch_updated_at
BEFORE UPDATE ON guard.rules
FOR EACH ROW EXECUTE FUNCTION guard.touch_updated_at();
