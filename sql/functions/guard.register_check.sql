-- Your own check (docs/dba.md, "Your own checks"): register a view you wrote as a check of a
-- rule, so that detection, `guard check`, check_call, alerts, the report and the metrics run it
-- like the shipped ones, and `guard db verify` counts the view as known rather than drift. The
-- view lives in schema guard as guard.check_<name> (run_detection reads only that schema: a view
-- elsewhere could be replaced by whoever owns that schema) and returns exactly the columns every
-- detection view returns, in their order and types; they are read from the catalog here, so a
-- wrong view is refused now, not at 3 a.m. by the detect job. Registering again the same id with
-- the same view updates its severity, description and remedy; a shipped check or view is refused,
-- so an upgrade never meets a row it did not write. The view is given to the check reader role
-- (guard.check_reader(): detection reads own checks as it, guard.read_own_check). A view
-- that would let a reader past row-level security or its own privileges is refused, naming why
-- (guard.own_check_bypass: no security_invoker, an owner that bypasses row-level security, a
-- read of what the reporting role may not read): every check view is granted to reporting and
-- its rows reach reporting as alerts. Registering again (after fixing the view) resolves the
-- check's check_failed and check_over_budget alerts, which brings it back into check_call at
-- once. Not granted to any role: a DBA (the owner role's member, or a superuser) registers.
CREATE OR REPLACE FUNCTION guard.register_check(
    check_id text,
    rule_id text,
    view_name text,
    severity text,
    description text,
    remedy text DEFAULT 'report'
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    contract constant text[] := ARRAY[
        'check_id text', 'company_id bigint', 'entity_type text', 'entity_id bigint',
        'call_id bigint', 'severity text', 'observed_at timestamp with time zone',
        'detail jsonb', 'rule_id text'
    ];
    the_view regclass;
    columns text[];
    bypass text;
BEGIN
    IF register_check.check_id IS NULL OR register_check.rule_id IS NULL
        OR register_check.view_name IS NULL OR register_check.severity IS NULL
        OR register_check.description IS NULL OR register_check.remedy IS NULL THEN
        RAISE EXCEPTION 'register_check needs a check id, a rule, a view, a severity, a description and a remedy'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF register_check.check_id !~ '^[a-z][a-z0-9_]{2,62}$' THEN
        RAISE EXCEPTION 'a check id is a lower-case code (letters, digits, _), not %',
            quote_literal(left(register_check.check_id, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF register_check.view_name !~ '^check_[a-z0-9_]{1,57}$' THEN
        RAISE EXCEPTION 'a check''s view is named guard.check_<name> (lower case), not %',
            quote_literal(left(register_check.view_name, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM guard.rules AS r WHERE r.id = register_check.rule_id) THEN
        RAISE EXCEPTION 'rule % does not exist', quote_literal(left(register_check.rule_id, 80))
            USING ERRCODE = 'no_data_found',
            HINT = 'the rules are the rows of guard.rules; a rule of your own is a row you insert there';
    END IF;
    SELECT c.oid INTO the_view
    FROM pg_catalog.pg_class AS c
    WHERE c.relnamespace = 'guard'::regnamespace AND c.relname = register_check.view_name
        AND c.relkind = 'v';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'view guard.% does not exist', register_check.view_name
            USING ERRCODE = 'undefined_table';
    END IF;
    IF EXISTS (
        -- by file name, not folder: a database rolled back to 0.2.0 records its check views under
        -- detection/, the folder they had then
        SELECT FROM guard.definitions AS d
        WHERE d.kind = 'view' AND split_part(d.path, '/', 2) = 'guard.' || register_check.view_name || '.sql'
    ) THEN
        RAISE EXCEPTION 'guard.% is a view Booking Guard ships', register_check.view_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
    INTO columns
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = the_view AND a.attnum > 0 AND NOT a.attisdropped;
    IF columns IS DISTINCT FROM contract THEN
        RAISE EXCEPTION 'view guard.% does not return the columns of a check', register_check.view_name
            USING
                ERRCODE = 'datatype_mismatch',
                DETAIL = 'expected (' || array_to_string(contract, ', ') || '), found ('
                || array_to_string(columns, ', ') || ')';
    END IF;

    -- Detection reads own checks as the check reader role (guard.read_own_check), whoever runs
    -- the pass: the view becomes that role's, whoever created it.
    EXECUTE format('ALTER VIEW guard.%I OWNER TO %I', register_check.view_name, guard.check_reader());
    -- Judged as it will run (its new owner); a refusal rolls the ALTER back with the call.
    bypass := guard.own_check_bypass(the_view);
    IF bypass IS NOT NULL THEN
        RAISE EXCEPTION 'own check % refused: %', register_check.check_id, bypass
            USING
                ERRCODE = 'invalid_object_definition',
                HINT = 'a check view reads with the reader''s rights only what the reporting role may read (docs/dba.md, "Your own checks")';
    END IF;
    -- And tried as it will run: opened (no row read) as the check reader, which may read only
    -- what the reporting role may read, so that whatever else its query needs is refused now.
    PERFORM guard.sync_check_reader();
    BEGIN
        PERFORM FROM guard.read_own_check(register_check.view_name, NULL, NULL, NULL, NULL, TRUE);
    EXCEPTION WHEN insufficient_privilege THEN
        GET STACKED DIAGNOSTICS bypass = MESSAGE_TEXT;
        RAISE EXCEPTION 'own check % refused: guard.% cannot run as the check reader role %: %',
            register_check.check_id, register_check.view_name, guard.check_reader(), bypass
            USING
                ERRCODE = 'invalid_object_definition',
                HINT = 'a check view reads only what the reporting role may read (docs/dba.md, "Your own checks")';
    END;

    INSERT INTO guard.checks AS k (id, rule_id, severity, description, remedy, check_view)
    VALUES (
        register_check.check_id, register_check.rule_id, register_check.severity,
        register_check.description, register_check.remedy, register_check.view_name
    )
    ON CONFLICT (id) DO UPDATE
        SET
            rule_id = excluded.rule_id,
            severity = excluded.severity,
            description = excluded.description,
            remedy = excluded.remedy,
            updated_at = now()
        WHERE k.check_view = excluded.check_view;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'check % exists with another view (or none)', register_check.check_id
            USING ERRCODE = 'unique_violation';
    END IF;
    UPDATE guard.alerts AS a
    SET status = 'resolved', resolved_at = now(), resolution = 'manual'
    WHERE
        a.status = 'open'
        AND a.fingerprint IN (
            'check_failed:check:' || register_check.check_id,
            'check_over_budget:check:' || register_check.check_id
        );
END;
$$;
