-- The outbox of what `guard watch` sends once per (kind, subject, channel): kind alert (subject:
-- the alert's id; queued by guard.enqueue_alert_deliveries), review_notice (the review item's
-- id), alert_resolved (the alert's id) and report (the report day as yyyymmdd, 20261125). Each
-- kind's source queues rows (guard.enqueue_review_notices, guard.enqueue_resolved_notices,
-- guard.enqueue_report_deliveries); guard.claim_deliveries hands a channel's due rows to one
-- dispatcher for a lease (claimed_by, claimed_until) with SKIP LOCKED, so two dispatchers never
-- send one twice, and a dispatcher that died leaves them due again when the lease ends;
-- guard.settle_deliveries marks them delivered, or records a failed attempt: retried with
-- exponential backoff (next_attempt_at) until the last attempt, which marks it failed (last_error
-- says why). An operator may mark alerts' backlog skipped (guard.skip_alert_deliveries, audited
-- in guard.delivery_skips).
-- No foreign key to the subjects: alerts stay partitionable and retention may drop them.
CREATE TABLE guard.deliveries (
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    subject bigint NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (
        status IN ('pending', 'delivered', 'failed', 'skipped')
    ),
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    claimed_by text,
    claimed_until timestamptz,
    last_error text,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- when guard.enqueue_resolved_notices looked at this delivered alert (its alert had resolved)
    resolution_queued_at timestamptz,
    PRIMARY KEY (kind, subject, channel),
    CONSTRAINT deliveries_delivered_has_time CHECK (
        (status = 'delivered') = (delivered_at IS NOT NULL)
    ),
    CONSTRAINT deliveries_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

-- A claim reads one kind's pending rows on a channel in this order (next_attempt_at, then the
-- subject for the many rows one statement queued at the same time) and stops after its batch.
CREATE INDEX deliveries_due_idx ON guard.deliveries (kind, channel, next_attempt_at, subject)
WHERE status = 'pending';

-- Claimed rows only (few: at most a batch per dispatcher and channel): releasing a dispatcher's
-- claims and the end of the next lease, without reading a channel's whole backlog.
CREATE INDEX deliveries_claimed_idx ON guard.deliveries (channel, claimed_until)
WHERE claimed_until IS NOT NULL;

-- Resolved notices (guard.enqueue_resolved_notices): a channel's delivered alerts whose
-- resolution was not looked at yet.
CREATE INDEX deliveries_resolution_due_idx ON guard.deliveries (channel, subject)
WHERE kind = 'alert' AND status = 'delivered' AND resolution_queued_at IS NULL;
