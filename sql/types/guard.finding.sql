-- One row a check view returned: what detection turns into an alert.
CREATE TYPE guard.finding AS (
    check_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    call_id bigint,
    severity text,
    observed_at timestamptz,
    detail jsonb
);
