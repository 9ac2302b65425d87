-- Cumulative totals behind the Prometheus counters of `guard metrics` (bookings by outcome,
-- validations, validation failures by reason, alerts opened by check, booking retries by
-- outcome) and the buckets and sums of its cumulative histograms (booking duration by outcome,
-- breaker recovery by circuit: label `<outcome or key>|<bound>`, `...|+Inf` or `...|sum_us`,
-- per bucket, not cumulative). A counter must never go down, yet retention deletes the rows it
-- counts: guard.fold_metric_totals (run by guard.apply_retention before it deletes anything) adds
-- the rows up to its watermark here, and a scrape reads these totals plus the rows after the
-- watermark (guard.metric_watermark), a day's worth at most, on an index. Labels are codes: an
-- outcome, a reason code, a check id, a circuit key.
CREATE TABLE guard.metric_totals (
    counter text NOT NULL CHECK (
        counter IN (
            'bookings', 'validations', 'validation_failures', 'alerts_opened',
            'booking_duration', 'booking_retries', 'breaker_recovery'
        )
    ),
    label text NOT NULL,
    total bigint NOT NULL CHECK (total >= 0),
    PRIMARY KEY (counter, label)
);
