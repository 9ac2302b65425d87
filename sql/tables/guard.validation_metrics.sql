-- One row per validate_booking call: outcome and latency.

CREATE TABLE guard.validation_metrics (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id bigint,
    call_id bigint,
    appointment_id bigint,
    ok boolean NOT NULL,
    failure_reason text,
    latency_ms double precision NOT NULL CHECK (latency_ms >= 0),
    measured_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX validation_metrics_measured_at_idx ON guard.validation_metrics (measured_at);
