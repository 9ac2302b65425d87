-- The companies a rollout change of a rule reaches, checked before anything is written: the ones
-- named, or those whose rollout bucket is below the percentage; NULL for both: none (the rule's
-- own value, or with guard.rollout_clear every company). First it takes the rollout's lock: one
-- change at a time (SHARE ROW EXCLUSIVE conflicts with itself, not with the commit-time check's
-- reads), and a login that may not write the overrides is refused there, before it learns
-- anything. Refuses an unknown rule, companies and a percentage at once, an empty list, a NULL
-- id, a percentage outside 0-100, and companies that do not exist (named, up to five, then how
-- many more).
CREATE OR REPLACE FUNCTION guard.rollout_targets(rule_id text, company_ids bigint[], percent integer)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown bigint[];
    targets bigint[];
BEGIN
    LOCK TABLE guard.rule_company_stages IN SHARE ROW EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT FROM guard.rules AS r WHERE r.id = rollout_targets.rule_id) THEN
        RAISE EXCEPTION 'rule % does not exist', rule_id
            USING ERRCODE = 'undefined_object', HINT = 'guard.rules lists every rule.';
    END IF;
    IF company_ids IS NOT NULL AND percent IS NOT NULL THEN
        RAISE EXCEPTION 'give company ids or a percentage, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF percent IS NOT NULL THEN
        IF percent NOT BETWEEN 0 AND 100 THEN
            RAISE EXCEPTION 'percent must be between 0 and 100, not %', percent
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}') INTO targets
        FROM public.companies AS c
        WHERE guard.rollout_bucket(c.id) < percent;
        RETURN targets;
    END IF;
    IF company_ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(company_ids) = 0 OR array_position(company_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'name at least one company, and no NULL id'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(DISTINCT x.id ORDER BY x.id) INTO unknown
    FROM unnest(company_ids) AS x (id)
    WHERE NOT EXISTS (SELECT FROM public.companies AS c WHERE c.id = x.id);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'company % does not exist; nothing changed',
            array_to_string(unknown[1:5], ', ')
            || CASE WHEN cardinality(unknown) > 5
                THEN format(' and %s more', cardinality(unknown) - 5) ELSE '' END
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT array_agg(DISTINCT x.id ORDER BY x.id) INTO targets FROM unnest(company_ids) AS x (id);
    RETURN targets;
END;
$$;
