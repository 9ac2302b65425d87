-- Alerts, de-duplicated by fingerprint (check:entity_type:entity_id). Also the outbox the
-- dispatcher delivers from. An alert names the check that raised it (guard.checks); its rule is
-- that check's rule. No foreign key: an alert outlives a check that is removed.

CREATE TABLE guard.alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint text NOT NULL,
    check_id text NOT NULL,
    company_id bigint,
    entity_type text NOT NULL,
    entity_id bigint,
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences > 0),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution text CHECK (resolution IN ('fixed', 'superseded', 'manual')),
    delivered_at timestamptz,
    observed_at timestamptz,
    written_at timestamptz,
    CONSTRAINT alerts_resolved_has_time CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT alerts_resolved_has_resolution CHECK ((status = 'resolved') = (resolution IS NOT NULL))
)
-- A detection pass writes an open alert it finds again (occurrences, last_seen_at) once its
-- last_seen_at is due for a refresh (guard.record_findings: 30 to 60 minutes): room in each page
-- keeps those updates in place (HOT), without a new entry in every index.
WITH (fillfactor = 70);

CREATE UNIQUE INDEX alerts_one_open_per_fingerprint ON guard.alerts (fingerprint)
WHERE status = 'open';

CREATE INDEX alerts_first_seen_at_idx ON guard.alerts (first_seen_at);

CREATE INDEX alerts_open_by_check_idx ON guard.alerts (check_id, entity_type, entity_id)
WHERE status = 'open';

CREATE INDEX alerts_undelivered_idx ON guard.alerts (id) WHERE delivered_at IS NULL;
