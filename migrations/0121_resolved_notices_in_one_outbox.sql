-- 0121_resolved_notices_in_one_outbox: the resolved notices become a kind of guard.deliveries
-- (alert_resolved, subject the alert's id), claimed and settled as every kind is. A notice sent
-- moves as a sent row (sent_at: when it was sent); one claimed now moves pending with its claim.
-- guard.alert_deliveries.resolved_sent_at becomes resolution_queued_at: when the notices' source
-- (guard.enqueue_resolved_notices) looked at the delivered row, so the rows announced or settled
-- before keep theirs and are not looked at again; the others are queued by the first
-- `guard watch --resolved` on their channel, as they were claimed before.
-- Locks: ACCESS EXCLUSIVE on guard.alert_deliveries for the rename (the dispatcher waits for the
-- commit); the rows moved are the notices sent, at most one per alert and channel.
INSERT INTO guard.deliveries (
    kind, subject, channel, status, created_at, sent_at, claimed_by, claimed_until
)
SELECT
    'alert_resolved' AS kind,
    d.alert_id,
    d.channel,
    CASE WHEN d.resolved_sent_at IS NULL THEN 'pending' ELSE 'sent' END AS status,
    coalesce(a.resolved_at, d.resolved_sent_at, now()) AS created_at,
    d.resolved_sent_at,
    d.claimed_by,
    d.claimed_until
FROM guard.alert_deliveries AS d
LEFT JOIN guard.alerts AS a ON d.alert_id = a.id
WHERE
    d.status = 'delivered'
    AND (
        d.resolved_sent_at IS DISTINCT FROM d.delivered_at
        AND d.resolved_sent_at IS NOT NULL
        OR d.resolved_sent_at IS NULL AND d.claimed_by IS NOT NULL
    );

UPDATE guard.alert_deliveries AS d
SET resolved_sent_at = now(), claimed_by = NULL, claimed_until = NULL
WHERE d.status = 'delivered' AND d.resolved_sent_at IS NULL AND d.claimed_by IS NOT NULL;

-- Only the notices' source reads it, and that comes with this migration.
-- squawk-ignore renaming-column
ALTER TABLE guard.alert_deliveries RENAME COLUMN resolved_sent_at TO resolution_queued_at;

-- The notices' old claim and mark: made by migrations before definitions came from sql/
-- (0031a_definitions_from_sql), so no record names them for `guard db apply` to drop.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.claim_resolved_deliveries(text, text, integer, double precision);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.complete_resolved_deliveries(text, bigint[]);
