-- 0071_review_notices: "a review item was opened" notices for `guard watch --review-notices`
-- (guard.review_notice_subscriptions, guard.review_notices: the notice outbox, claimed with SKIP
-- LOCKED and a lease as alert deliveries are), and the monotonic counters of `guard metrics`
-- (guard.metric_totals, guard.metric_watermark: cumulative totals that survive retention; the
-- functions that fill and read them are definitions in sql/).
-- The watermark starts an hour ago with the totals of every older row, counted once here by the
-- same ranges guard.fold_metric_totals uses, so the first scrapes read at most an hour of rows.
-- That count reads validation_metrics, booking_attempts and alerts once (ACCESS SHARE: writes go
-- on); on a large journal it takes as long as one sequential read of each.
-- Locks: none on existing tables beyond ACCESS SHARE; the new tables are empty.

CREATE TABLE guard.metric_totals (
    counter text NOT NULL CHECK (
        counter IN ('bookings', 'validations', 'validation_failures', 'alerts_opened')
    ),
    label text NOT NULL,
    total bigint NOT NULL CHECK (total >= 0),
    PRIMARY KEY (counter, label)
);

CREATE TABLE guard.metric_watermark (
    id boolean PRIMARY KEY DEFAULT TRUE CHECK (id),
    folded_before timestamptz NOT NULL,
    folded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE guard.review_notice_subscriptions (
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    priority smallint NOT NULL CHECK (priority >= 0),
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, priority)
);

CREATE TABLE guard.review_notices (
    review_item_id bigint NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    claimed_by text,
    claimed_until timestamptz,
    last_error text,
    PRIMARY KEY (review_item_id, channel),
    CONSTRAINT review_notices_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT review_notices_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

CREATE INDEX review_notices_pending_idx ON guard.review_notices (channel, review_item_id)
WHERE status = 'pending';

INSERT INTO guard.metric_watermark (folded_before) VALUES (now() - interval '1 hour');

INSERT INTO guard.metric_totals (counter, label, total)
SELECT
    'bookings' AS counter,
    b.state AS label,
    count(*) AS total
FROM guard.booking_attempts AS b
WHERE b.state IN ('booked', 'recovered', 'failed') AND b.finished_at < now() - interval '1 hour'
GROUP BY b.state
UNION ALL
SELECT
    'validations' AS counter,
    CASE WHEN m.ok THEN 'passed' ELSE 'failed' END AS label,
    count(*) AS total
FROM guard.validation_metrics AS m
WHERE m.measured_at < now() - interval '1 hour'
GROUP BY m.ok
UNION ALL
SELECT
    'validation_failures' AS counter,
    coalesce(m.failure_reason, 'unknown') AS label,
    count(*) AS total
FROM guard.validation_metrics AS m
WHERE NOT m.ok AND m.measured_at < now() - interval '1 hour'
GROUP BY coalesce(m.failure_reason, 'unknown')
UNION ALL
SELECT
    'alerts_opened' AS counter,
    a.check_id AS label,
    count(*) AS total
FROM guard.alerts AS a
WHERE a.first_seen_at < now() - interval '1 hour'
GROUP BY a.check_id;
