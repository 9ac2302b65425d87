-- One row: every row older than folded_before (by its time: validation_metrics.measured_at,
-- booking_attempts.finished_at, alerts.first_seen_at) is counted in guard.metric_totals, and a
-- scrape counts only the rows from folded_before on. Retention deletes only rows before it, so no
-- row leaves the database uncounted.
CREATE TABLE guard.metric_watermark (
    id boolean PRIMARY KEY DEFAULT TRUE CHECK (id),
    folded_before timestamptz NOT NULL,
    folded_at timestamptz NOT NULL DEFAULT now()
);
