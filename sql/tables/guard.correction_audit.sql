-- Every automatic correction: rule, entity, before and after.

CREATE TABLE guard.correction_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id text NOT NULL,
    company_id bigint,
    entity_type text NOT NULL,
    entity_id bigint NOT NULL,
    before jsonb,
    after jsonb,
    reason text NOT NULL,
    actor text NOT NULL DEFAULT current_user,
    corrected_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX correction_audit_corrected_at_idx ON guard.correction_audit (corrected_at);

CREATE INDEX correction_audit_entity_idx ON guard.correction_audit (entity_type, entity_id);
