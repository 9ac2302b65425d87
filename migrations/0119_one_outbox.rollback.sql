-- Rollback of 0119_one_outbox: the review notices and report deliveries go back to their own
-- tables (as 0071_review_notices and 0080_report_delivery made them) with every row, claim and
-- error; the rows of kinds those tables cannot hold are dropped with guard.deliveries. The
-- definitions of the level rolled back to come with it (docs/dba.md, "Rolling back").
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

CREATE TABLE guard.report_deliveries (
    report_date date NOT NULL,
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    claimed_by text,
    claimed_until timestamptz,
    last_error text,
    PRIMARY KEY (report_date, channel),
    CONSTRAINT report_deliveries_sent_has_time CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT report_deliveries_claim_is_complete CHECK (
        (claimed_by IS NULL) = (claimed_until IS NULL)
    )
);

CREATE INDEX report_deliveries_pending_idx ON guard.report_deliveries (channel, report_date)
WHERE status = 'pending';

INSERT INTO guard.review_notices (
    review_item_id, channel, status, created_at, sent_at, claimed_by, claimed_until, last_error
)
SELECT
    d.subject,
    d.channel,
    d.status,
    d.created_at,
    d.sent_at,
    d.claimed_by,
    d.claimed_until,
    d.last_error
FROM guard.deliveries AS d
WHERE d.kind = 'review_notice';

INSERT INTO guard.report_deliveries (
    report_date, channel, status, created_at, sent_at, claimed_by, claimed_until, last_error
)
SELECT
    to_date(d.subject::text, 'YYYYMMDD') AS report_date,
    d.channel,
    d.status,
    d.created_at,
    d.sent_at,
    d.claimed_by,
    d.claimed_until,
    d.last_error
FROM guard.deliveries AS d
WHERE d.kind = 'report';

DROP TABLE guard.deliveries;
