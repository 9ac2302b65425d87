-- Cumulative totals behind the Prometheus counters of `guard metrics` (bookings by outcome,
-- validations, validation failures by reason, alerts opened by check). A counter must never go
-- down, yet retention deletes the rows it counts: guard.fold_metric_totals (run by
-- guard.apply_retention before it deletes anything) adds the rows up to its watermark here, and a
-- scrape reads these totals plus the rows after the watermark (guard.metric_watermark), a day's
-- worth at most, on an index. Labels are codes: an outcome, a reason code or a check id.
CREATE TABLE guard.metric_totals (
    counter text NOT NULL CHECK (
        counter IN ('bookings', 'validations', 'validation_failures', 'alerts_opened')
    ),
    label text NOT NULL,
    total bigint NOT NULL CHECK (total >= 0),
    PRIMARY KEY (counter, label)
);
