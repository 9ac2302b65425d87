-- One notice per (review item, channel): "a review item was opened", sent once by `guard watch`
-- to the channels that subscribed to its priority (guard.review_notice_subscriptions). Claimed
-- by one dispatcher for a lease (claimed_by, claimed_until) with SKIP LOCKED, as alert
-- deliveries are: two dispatchers never send one notice twice, and a send that failed (or a
-- dispatcher that died) is due again when the lease ends. status failed: it could not be
-- rendered (last_error says why), never retried.
-- No foreign key to guard.review_items (no guard table has one).
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

-- A claim reads a channel's pending notices oldest item first and stops after its batch.
CREATE INDEX review_notices_pending_idx ON guard.review_notices (channel, review_item_id)
WHERE status = 'pending';
