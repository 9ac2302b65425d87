-- 0122_alert_deliveries_in_one_outbox: the alert deliveries become a kind of guard.deliveries
-- (alert, subject the alert's id), claimed, settled and released as every kind is. The columns
-- only they had become every kind's: attempts and next_attempt_at (a failed send is retried
-- with backoff), resolution_queued_at (guard.enqueue_resolved_notices) and the status skipped.
-- One word for a delivery done: 'delivered' (as guard.alerts.delivered_at), so the notices'
-- 'sent' and sent_at become 'delivered' and delivered_at. Every row moves with its data:
-- pending ones with their attempts, next attempt and claim, the others with their times.
-- Locks: ACCESS EXCLUSIVE on guard.deliveries and guard.alert_deliveries (dropped); the
-- dispatcher waits for the commit. The rows moved are the alert deliveries retention keeps.
-- Only guard watch's functions write the column, and those come with this migration.
-- squawk-ignore renaming-column
ALTER TABLE guard.deliveries RENAME COLUMN sent_at TO delivered_at;
-- squawk-ignore ban-drop-constraint
ALTER TABLE guard.deliveries DROP CONSTRAINT deliveries_sent_has_time;
-- squawk-ignore ban-drop-constraint
ALTER TABLE guard.deliveries DROP CONSTRAINT deliveries_status_check;
UPDATE guard.deliveries SET status = 'delivered'
WHERE status = 'sent';
-- squawk-ignore adding-field-with-default
ALTER TABLE guard.deliveries
ADD COLUMN attempts integer NOT NULL DEFAULT 0 CONSTRAINT deliveries_attempts_check CHECK (
    attempts >= 0
),
-- squawk-ignore adding-field-with-default
ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
ADD COLUMN resolution_queued_at timestamptz;
-- The table is rewritten under this lock anyway (the rows move in): validated at once.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE guard.deliveries ADD CONSTRAINT deliveries_status_check CHECK (
    status IN ('pending', 'delivered', 'failed', 'skipped')
);
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE guard.deliveries ADD CONSTRAINT deliveries_delivered_has_time CHECK (
    (status = 'delivered') = (delivered_at IS NOT NULL)
);

INSERT INTO guard.deliveries (
    kind, subject, channel, status, created_at, delivered_at, claimed_by, claimed_until,
    last_error, attempts, next_attempt_at, resolution_queued_at
)
SELECT
    'alert' AS kind,
    d.alert_id,
    d.channel,
    d.status,
    d.created_at,
    d.delivered_at,
    d.claimed_by,
    d.claimed_until,
    d.last_error,
    d.attempts,
    d.next_attempt_at,
    d.resolution_queued_at
FROM guard.alert_deliveries AS d;

-- Its rows are in guard.deliveries now.
-- squawk-ignore ban-drop-table
DROP TABLE guard.alert_deliveries;

-- A claim reads one kind's pending rows on a channel in the order they fall due.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX guard.deliveries_pending_idx;
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX deliveries_due_idx ON guard.deliveries (kind, channel, next_attempt_at, subject)
WHERE status = 'pending';
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX deliveries_claimed_idx ON guard.deliveries (channel, claimed_until)
WHERE claimed_until IS NOT NULL;
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX deliveries_resolution_due_idx ON guard.deliveries (channel, subject)
WHERE kind = 'alert' AND status = 'delivered' AND resolution_queued_at IS NULL;

-- The alerts' old claim, complete, fail and release, made by migrations (0011_alert_delivery,
-- 0031_rules_and_checks): a database built since 0031a_definitions_from_sql holds no record of
-- them for `guard db apply` to drop.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.claim_alert_deliveries(text, text, integer, double precision);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.complete_alert_deliveries(text, bigint[]);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.fail_alert_deliveries(
    text, bigint[], text, double precision, double precision, integer
);
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS guard.release_alert_deliveries(text, text);
