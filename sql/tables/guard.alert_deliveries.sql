-- Delivery state of each alert per dispatcher channel (stdout, webhook, email): the outbox's
-- bookkeeping. A row is claimed by one dispatcher for a lease (claimed_by, claimed_until), sent,
-- then marked delivered; a failed send is retried with exponential backoff until max attempts;
-- an operator may mark a backlog skipped (guard.skip_alert_deliveries, audited in
-- guard.delivery_skips).
-- No foreign key to guard.alerts: alerts stay partitionable and retention may drop them.
CREATE TABLE guard.alert_deliveries (
    alert_id bigint NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (
        status IN ('pending', 'delivered', 'failed', 'skipped')
    ),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_error text,
    claimed_by text,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- when guard.enqueue_resolved_notices looked at this delivered row (its alert had resolved)
    resolution_queued_at timestamptz,
    PRIMARY KEY (alert_id, channel),
    CONSTRAINT alert_deliveries_delivered_has_time CHECK (
        (status = 'delivered') = (delivered_at IS NOT NULL)
    ),
    CONSTRAINT alert_deliveries_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

-- Superseded by alert_deliveries_due_order_idx (0034a_dispatcher_bounded_index); to be dropped.
CREATE INDEX alert_deliveries_due_idx ON guard.alert_deliveries (channel, next_attempt_at)
WHERE status = 'pending';

-- A claim reads a channel's pending rows in this order (next_attempt_at, then alert_id for the
-- many rows one statement enqueued at the same time) and stops after its batch.
CREATE INDEX alert_deliveries_due_order_idx ON guard.alert_deliveries (
    channel, next_attempt_at, alert_id
)
WHERE status = 'pending';

-- Claimed rows only (few: at most a batch per dispatcher and channel): releasing a dispatcher's
-- claims and the end of the next lease, without reading a channel's whole backlog.
CREATE INDEX alert_deliveries_claimed_idx ON guard.alert_deliveries (channel, claimed_until)
WHERE claimed_until IS NOT NULL;

-- Resolved notices (guard.enqueue_resolved_notices): a channel's delivered rows whose alert's
-- resolution was not looked at yet.
CREATE INDEX alert_deliveries_resolution_due_idx ON guard.alert_deliveries (channel, alert_id)
WHERE status = 'delivered' AND resolution_queued_at IS NULL;
