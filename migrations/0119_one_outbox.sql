-- 0119_one_outbox: the review notices and the daily report deliveries move into one outbox,
-- guard.deliveries, keyed by (kind, subject, channel), with one claim and one settle for every
-- kind (guard.claim_deliveries, guard.settle_deliveries). A kind's subject is a bigint: a review
-- item's id, a report day as yyyymmdd (20261125), which keeps the claim's oldest-first order.
-- Pending, claimed, sent and failed rows move with their claim, times and error; the old tables
-- are dropped in the same transaction, so no row is queued twice nor lost.
-- Locks: ACCESS EXCLUSIVE on guard.review_notices and guard.report_deliveries (dropped; the
-- dispatcher waits for the commit: at most a few thousand rows move).
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

CREATE INDEX deliveries_pending_idx ON guard.deliveries (kind, channel, subject)
WHERE status = 'pending';

INSERT INTO guard.deliveries (
    kind, subject, channel, status, created_at, sent_at, claimed_by, claimed_until, last_error
)
SELECT
    'review_notice' AS kind,
    n.review_item_id,
    n.channel,
    n.status,
    n.created_at,
    n.sent_at,
    n.claimed_by,
    n.claimed_until,
    n.last_error
FROM guard.review_notices AS n;

INSERT INTO guard.deliveries (
    kind, subject, channel, status, created_at, sent_at, claimed_by, claimed_until, last_error
)
SELECT
    'report' AS kind,
    to_char(r.report_date, 'YYYYMMDD')::bigint AS subject,
    r.channel,
    r.status,
    r.created_at,
    r.sent_at,
    r.claimed_by,
    r.claimed_until,
    r.last_error
FROM guard.report_deliveries AS r;

-- Their rows are in guard.deliveries now; only guard watch's functions read them, and those
-- come with this migration.
-- squawk-ignore ban-drop-table
DROP TABLE guard.review_notices;
-- squawk-ignore ban-drop-table
DROP TABLE guard.report_deliveries;
