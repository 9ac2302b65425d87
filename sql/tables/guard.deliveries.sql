-- The outbox of the notices `guard watch` sends once per (kind, subject, channel): kind
-- review_notice (subject: the review item's id), alert_resolved (the alert's id) and report
-- (the report day as yyyymmdd, 20261125). Each kind's source queues rows
-- (guard.enqueue_review_notices, guard.enqueue_resolved_notices,
-- guard.enqueue_report_deliveries); guard.claim_deliveries hands a channel's pending rows to one
-- dispatcher for a lease (claimed_by, claimed_until) with SKIP LOCKED, so two dispatchers never
-- send one twice, and a send that failed (or a dispatcher that died) is due again when the lease
-- ends; guard.settle_deliveries marks them sent, or failed (it could not be rendered: last_error
-- says why, never retried).
-- No foreign key to the subjects (no guard table has one).
CREATE TABLE guard.deliveries (
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    subject bigint NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    claimed_by text,
    claimed_until timestamptz,
    last_error text,
    PRIMARY KEY (kind, subject, channel),
    CONSTRAINT deliveries_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT deliveries_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

-- A claim reads one kind's pending rows on a channel, oldest subject first, and stops after its
-- batch.
CREATE INDEX deliveries_pending_idx ON guard.deliveries (kind, channel, subject)
WHERE status = 'pending';
