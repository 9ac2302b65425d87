-- 0080_report_delivery: `guard watch --report`, `--digest` and `--min-severity` (docs/alerts.md).
-- guard.report_subscriptions and guard.report_deliveries: the daily report's outbox, one row per
-- (report day, channel), claimed with SKIP LOCKED and a lease as alert deliveries are.
-- guard.alert_digests: one row per digest sent, written in the transaction that marks its alerts
-- delivered. guard.delivery_skips also records deliveries skipped for a channel's minimum
-- severity (below_severity; their seen_before is the time of the skip).
-- Locks: ACCESS EXCLUSIVE on guard.delivery_skips (a few rows, only `guard watch` writes it) for
-- a nullable column without a default: no rewrite. The new tables are empty.

CREATE TABLE guard.report_subscriptions (
    channel text PRIMARY KEY CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    subscribed_at timestamptz NOT NULL DEFAULT now(),
    first_report_date date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date - 1)
);

CREATE TABLE guard.report_deliveries (
    report_date date NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    claimed_by text,
    claimed_until timestamptz,
    last_error text,
    PRIMARY KEY (report_date, channel),
    CONSTRAINT report_deliveries_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT report_deliveries_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

CREATE INDEX report_deliveries_pending_idx ON guard.report_deliveries (channel, report_date)
WHERE status = 'pending';

CREATE TABLE guard.alert_digests (
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    period_end timestamptz NOT NULL,
    alerts integer NOT NULL CHECK (alerts >= 0),
    messages integer NOT NULL DEFAULT 1 CHECK (messages > 0),
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, period_end)
);

ALTER TABLE guard.delivery_skips ADD COLUMN below_severity text CHECK (
    below_severity IN ('critical', 'high', 'medium', 'low')
);
