-- Drop the stage or mode override of the named companies, of a percentage of every company, or,
-- with neither, of every company; the companies follow the rule's own value again. A row left
-- without any override goes; one that still overrides the other setting keeps it. Returns the
-- ids of the companies that had the override, in order. Refused as guard.rollout_targets
-- refuses, and for an unknown rule or setting, changing nothing. SECURITY INVOKER and executable
-- by the owner role only.
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
    -- One change at a time (SHARE ROW EXCLUSIVE conflicts with itself, not with the commit-time
    -- check's reads); a login that may not write the overrides is refused here, before it
    -- learns anything.
    LOCK TABLE guard.rule_company_stages IN SHARE ROW EXCLUSIVE MODE;
    IF setting IS NULL OR setting NOT IN ('stage', 'mode') THEN
        RAISE EXCEPTION 'setting must be stage or mode, not %', quote_nullable(setting)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM guard.rules AS r WHERE r.id = rollout_clear.rule_id) THEN
        RAISE EXCEPTION 'rule % does not exist', rule_id
            USING ERRCODE = 'undefined_object', HINT = 'guard.rules lists every rule.';
    END IF;
    targets := guard.rollout_targets(company_ids, percent);
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
    IF setting = 'stage' THEN
        WITH cleared AS (
            UPDATE guard.rule_company_stages AS o SET stage = NULL
            WHERE
                o.rule_id = rollout_clear.rule_id
                AND (everyone OR o.company_id = ANY (targets))
                AND o.stage IS NOT NULL
            RETURNING o.company_id
        )

        SELECT array_agg(c.company_id) INTO kept FROM cleared AS c;
    ELSE
        WITH cleared AS (
            UPDATE guard.rule_company_stages AS o SET mode = NULL
            WHERE
                o.rule_id = rollout_clear.rule_id
                AND (everyone OR o.company_id = ANY (targets))
                AND o.mode IS NOT NULL
            RETURNING o.company_id
        )

        SELECT array_agg(c.company_id) INTO kept FROM cleared AS c;
    END IF;
    RETURN coalesce((
        SELECT array_agg(x.id ORDER BY x.id) FROM unnest(gone || kept) AS x (id)
    ), '{}');
END;
$$;
