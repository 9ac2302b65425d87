-- Rollback of 0122_alert_deliveries_in_one_outbox: the alert deliveries go back to
-- guard.alert_deliveries with their data (status, attempts, next attempt, claim, times, error,
-- resolution_queued_at), and guard.deliveries back to the notices' columns: 'delivered' is
-- 'sent' again, and the attempts and next attempts of notices are forgotten (their claims and
-- lease keep them from being sent twice). The definitions of the level rolled back to come with
-- it (docs/dba.md, "Rolling back").
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

CREATE INDEX alert_deliveries_due_idx ON guard.alert_deliveries (channel, next_attempt_at)
WHERE status = 'pending';

CREATE INDEX alert_deliveries_due_order_idx ON guard.alert_deliveries (
    channel, next_attempt_at, alert_id
)
WHERE status = 'pending';

CREATE INDEX alert_deliveries_claimed_idx ON guard.alert_deliveries (channel, claimed_until)
WHERE claimed_until IS NOT NULL;

CREATE INDEX alert_deliveries_resolution_due_idx ON guard.alert_deliveries (channel, alert_id)
WHERE status = 'delivered' AND resolution_queued_at IS NULL;

INSERT INTO guard.alert_deliveries (
    alert_id, channel, status, attempts, next_attempt_at, delivered_at, last_error, claimed_by,
    claimed_until, created_at, resolution_queued_at
)
SELECT
    d.subject,
    d.channel,
    d.status,
    d.attempts,
    d.next_attempt_at,
    d.delivered_at,
    d.last_error,
    d.claimed_by,
    d.claimed_until,
    d.created_at,
    d.resolution_queued_at
FROM guard.deliveries AS d
WHERE d.kind = 'alert';

DELETE FROM guard.deliveries
WHERE kind = 'alert';

-- The notices' rows only are left: a few thousand at most.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guard.deliveries_due_idx;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guard.deliveries_claimed_idx;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guard.deliveries_resolution_due_idx;
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX deliveries_pending_idx ON guard.deliveries (kind, channel, subject)
WHERE status = 'pending';

ALTER TABLE guard.deliveries
DROP CONSTRAINT deliveries_delivered_has_time,
DROP CONSTRAINT deliveries_status_check,
DROP COLUMN attempts,
DROP COLUMN next_attempt_at,
DROP COLUMN resolution_queued_at;
UPDATE guard.deliveries SET status = 'sent'
WHERE status = 'delivered';
-- squawk-ignore renaming-column
ALTER TABLE guard.deliveries RENAME COLUMN delivered_at TO sent_at;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE guard.deliveries ADD CONSTRAINT deliveries_status_check CHECK (
    status IN ('pending', 'sent', 'failed')
);
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE guard.deliveries ADD CONSTRAINT deliveries_sent_has_time CHECK (
    (status = 'sent') = (sent_at IS NOT NULL)
);
