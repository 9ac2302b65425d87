-- Rollback of 0121_resolved_notices_in_one_outbox: the resolved notices go back to
-- guard.alert_deliveries.resolved_sent_at with their claims: a notice sent (or that could not be
-- rendered) marks its row, a pending one leaves it unmarked and claimed as it was, and a row
-- looked at without a notice (its alert had resolved when it was delivered) is settled as the
-- claim of that level settles it (delivered_at). The definitions of the level rolled back to
-- come with it (docs/dba.md, "Rolling back").
-- squawk-ignore renaming-column
ALTER TABLE guard.alert_deliveries RENAME COLUMN resolution_queued_at TO resolved_sent_at;

UPDATE guard.alert_deliveries AS d
SET resolved_sent_at = d.delivered_at
WHERE
    d.resolved_sent_at IS NOT NULL
    AND NOT EXISTS (
        SELECT
        FROM guard.deliveries AS n
        WHERE n.kind = 'alert_resolved' AND n.subject = d.alert_id AND n.channel = d.channel
    );

UPDATE guard.alert_deliveries AS d
SET
    resolved_sent_at = CASE WHEN n.status <> 'pending' THEN coalesce(n.sent_at, n.created_at) END,
    claimed_by = n.claimed_by,
    claimed_until = n.claimed_until
FROM guard.deliveries AS n
WHERE n.kind = 'alert_resolved' AND n.subject = d.alert_id AND n.channel = d.channel;

DELETE FROM guard.deliveries
WHERE kind = 'alert_resolved';
