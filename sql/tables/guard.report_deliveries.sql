-- One delivery per (stored daily report, channel): the report of a day is sent once by `guard
-- watch --report CHANNEL`. Claimed by one dispatcher for a lease (claimed_by, claimed_until) with
-- SKIP LOCKED, as alert deliveries are: two dispatchers never send one report twice, and a send
-- that failed (or a dispatcher that died) is due again when the lease ends. status failed: it
-- could not be rendered (last_error says why), never retried.
-- No foreign key to guard.daily_reports (one report day is a row per company there).
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

-- A claim reads a channel's pending reports oldest day first and stops after its batch.
CREATE INDEX report_deliveries_pending_idx ON guard.report_deliveries (channel, report_date)
WHERE status = 'pending';
