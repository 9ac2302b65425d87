-- One row per `guard watch --skip-before`: the audit of deliveries an operator chose not to send.
CREATE TABLE guard.delivery_skips (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    skipped_by text NOT NULL CHECK (skipped_by <> ''),
    database_role text NOT NULL DEFAULT current_user,
    seen_before timestamptz NOT NULL,
    channels text[] NOT NULL CHECK (cardinality(channels) > 0),
    deliveries integer NOT NULL CHECK (deliveries >= 0)
);
