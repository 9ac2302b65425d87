-- The daily consistency report, one row per company and day.

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
    by_check jsonb NOT NULL DEFAULT '{}',
    total_appointments integer NOT NULL DEFAULT 0,
    recovery_rate_pct numeric(6, 2),
    detection_latency_p95_seconds numeric(12, 2),
    action_items jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (report_date, company_id)
);
