-- Drop the stage or mode override of the named companies, of a percentage of every company, or,
-- with neither, of every company; the companies follow the rule's own value again. A row left
-- without any override goes; one that still overrides the other setting keeps it. Returns the
-- ids of the companies that had the override, in order. Refused as guard.rollout_targets
-- refuses, and for an unknown rule or setting or a mode of I4_booked_outcome (it has none),
-- changing nothing. SECURITY INVOKER and executable by the owner role only.
CREATE OR REPLACE FUNCTION guard.rollout_clear(
    rule_id text,
    setting text,
    company_ids bigint[] DEFAULT NULL,
    percent integer DEFAULT NULL
)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    targets bigint[];
    everyone boolean;
    gone bigint[];
    kept bigint[];
BEGIN
    IF setting IS NULL OR setting NOT IN ('stage', 'mode') THEN
        RAISE EXCEPTION 'setting must be stage or mode, not %', quote_nullable(setting)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    targets := guard.rollout_targets(rule_id, company_ids, percent);
    IF setting = 'mode' AND rule_id = 'I4_booked_outcome' THEN
        RAISE EXCEPTION 'rule I4_booked_outcome has no mode: guard.reconcile rolls a phantom booking back by its company''s stage (observe: alerted only; correct or enforce: rolled back), and a job has no write to reject'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    everyone := targets IS NULL;
    WITH dropped AS (
        DELETE FROM guard.rule_company_stages AS o
        WHERE
            o.rule_id = rollout_clear.rule_id
            AND (everyone OR o.company_id = ANY (targets))
            AND CASE setting
                WHEN 'stage' THEN o.stage IS NOT NULL AND o.mode IS NULL
                ELSE o.mode IS NOT NULL AND o.stage IS NULL
            END
        RETURNING o.company_id
    )

    SELECT array_agg(d.company_id) INTO gone FROM dropped AS d;
    WITH cleared AS (
        UPDATE guard.rule_company_stages AS o
        SET
            stage = CASE WHEN setting = 'stage' THEN NULL ELSE o.stage END,
            mode = CASE WHEN setting = 'mode' THEN NULL ELSE o.mode END
        WHERE
            o.rule_id = rollout_clear.rule_id
            AND (everyone OR o.company_id = ANY (targets))
            AND CASE setting WHEN 'stage' THEN o.stage IS NOT NULL ELSE o.mode IS NOT NULL END
        RETURNING o.company_id
    )

    SELECT array_agg(c.company_id) INTO kept FROM cleared AS c;
    RETURN coalesce((
        SELECT array_agg(x.id ORDER BY x.id) FROM unnest(gone || kept) AS x (id)
    ), '{}');
END;
$$;
