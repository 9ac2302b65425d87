-- One row per `guard watch --skip-before` (seen_before: the cutoff), and one per dispatcher round
-- that skipped deliveries below a channel's `--min-severity` (below_severity: that minimum;
-- seen_before: the time of the skip): the audit of deliveries not sent on purpose.
CREATE TABLE guard.delivery_skips (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    skipped_by text NOT NULL CHECK (skipped_by <> ''),
    database_role text NOT NULL DEFAULT current_user,
    seen_before timestamptz NOT NULL,
    channels text[] NOT NULL CHECK (cardinality(channels) > 0),
    deliveries integer NOT NULL CHECK (deliveries >= 0),
    below_severity text CHECK (below_severity IN ('critical', 'high', 'medium', 'low'))
);
