-- Roll a rule's stage or mode out: give the named companies, or a stable percentage of every
-- company (guard.rollout_bucket), the value as their override (guard.rule_company_stages); with
-- neither, set the rule's own value, which every company without an override follows. Returns
-- the ids of the companies written, in order (none for the rule's own). One way for every client:
-- `guard rules stage|mode` calls it, and so may any other language. Refused, changing nothing:
-- an unknown rule, setting or value, a rule whose check does not read a company's setting
-- (guard.rollout_rule), a mode of I4_booked_outcome (a job rejects no write), the rule's own
-- stage where its constraints set it (`guard db validate`), and what guard.rollout_targets
-- refuses. SECURITY INVOKER and executable by the owner role only: it writes with the caller's
-- rights.
CREATE OR REPLACE FUNCTION guard.rollout_set(
    rule_id text,
    setting text,
    value text,
    company_ids bigint[] DEFAULT NULL,
    percent integer DEFAULT NULL
)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    targets bigint[];
    allowed text[] := CASE setting
        WHEN 'stage' THEN ARRAY['observe', 'correct', 'enforce']
        WHEN 'mode' THEN ARRAY['correct', 'reject']
    END;
BEGIN
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'setting must be stage or mode, not %', quote_nullable(setting)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF value IS NULL OR value <> ALL (allowed) THEN
        RAISE EXCEPTION '% must be one of %, not %',
            setting, array_to_string(allowed, ', '), quote_nullable(value)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    targets := guard.rollout_targets(rule_id, company_ids, percent);
    IF NOT guard.rollout_rule(rule_id) THEN
        RAISE EXCEPTION 'rule % cannot be rolled out by company: only I3_appointment_flags (its commit-time check) and I4_booked_outcome (guard.reconcile) read a company''s stage',
            rule_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF setting = 'mode' AND rule_id = 'I4_booked_outcome' THEN
        RAISE EXCEPTION 'rule I4_booked_outcome has no mode: guard.reconcile rolls a phantom booking back by its company''s stage (observe: alerted only; correct or enforce: rolled back), and a job has no write to reject'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF targets IS NULL THEN
        IF setting = 'stage' THEN
            IF EXISTS (
                SELECT FROM guard.rules AS r
                WHERE r.id = rollout_set.rule_id AND cardinality(r.constraint_names) > 0
            ) THEN
                RAISE EXCEPTION 'the stage of % follows its constraints (guard db validate)', rule_id
                    USING ERRCODE = 'object_not_in_prerequisite_state';
            END IF;
            UPDATE guard.rules AS r SET stage = value WHERE r.id = rollout_set.rule_id;
        ELSE
            UPDATE guard.rules AS r SET mode = value WHERE r.id = rollout_set.rule_id;
        END IF;
        RETURN '{}'::bigint[];
    END IF;
    IF setting = 'stage' THEN
        INSERT INTO guard.rule_company_stages AS o (rule_id, company_id, stage)
        SELECT rollout_set.rule_id, t.id, value FROM unnest(targets) AS t (id)
        ON CONFLICT ON CONSTRAINT rule_company_stages_pkey DO UPDATE SET stage = excluded.stage;
    ELSE
        INSERT INTO guard.rule_company_stages AS o (rule_id, company_id, mode)
        SELECT rollout_set.rule_id, t.id, value FROM unnest(targets) AS t (id)
        ON CONFLICT ON CONSTRAINT rule_company_stages_pkey DO UPDATE SET mode = excluded.mode;
    END IF;
    RETURN targets;
END;
$$;
