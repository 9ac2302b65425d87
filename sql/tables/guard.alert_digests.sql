-- One row per digest period a `guard watch --digest CHANNEL=HOURS` channel was sent: the period's
-- end (a multiple of HOURS since 1970-01-01 UTC), how many alerts the digest covered and in how
-- many messages (more than one only for a period with more alerts than one claim takes). Written
-- by guard.complete_alert_digest in the transaction that marks those alerts' deliveries
-- delivered: a period is recorded only once it was sent, and its alerts stay pending until then.
CREATE TABLE guard.alert_digests (
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    period_end timestamptz NOT NULL,
    alerts integer NOT NULL CHECK (alerts >= 0),
    messages integer NOT NULL DEFAULT 1 CHECK (messages > 0),
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, period_end)
);
