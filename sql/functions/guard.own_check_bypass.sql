-- Why a DBA's own check view would let a reader past row-level security or past its own
-- privileges, in one sentence, or NULL when it would not: the rule guard.register_check refuses
-- by and `guard db verify` reports by (an own check registered before the rule, or altered
-- since). Every check view is granted to the reporting and reviewer roles (guard.apply_grants)
-- and its rows become alerts shown to the companies they name, so a check may only read, with
-- the reader's rights, what the reporting role may read itself:
--   - the view runs with the reader's rights (security_invoker): without it every reader sees
--     what the view's owner sees, every company;
--   - its owner is no superuser or BYPASSRLS role: detection runs the views with the owner
--     role's rights, and such an owner reads anything, pg_authid included, into alerts;
--   - every relation it reads, directly or through views with security_invoker, is one the
--     reporting role may read (the columns it uses): a table without row-level security that
--     reporting may not read (public.customers and its phone numbers, guard.breaker_state, a
--     catalog) would reach reporting through the check's alerts, and so would a sequence's
--     last_value (public.calls_id_seq: every company's calls counted); a view read on the way runs
--     with the reader's rights too, or is one Booking Guard ships (they filter by the reader's
--     companies themselves) or PostgreSQL's own (pg_catalog, information_schema);
--   - it calls no SECURITY DEFINER function but Booking Guard's (it reads with its owner's
--     rights whoever calls it), and no function of your own in SQL or PL/pgSQL: what such a
--     function reads is not in the catalog, and it would read it with detection's rights;
--   - it calls no function that reads what a query or relation name given at run time reads
--     (query_to_xml, table_to_xml and their kin) and no VOLATILE function (set_config,
--     pg_advisory_lock, lo_creat, nextval, pg_sleep: a check only reads). What the catalog cannot
--     show is bounded at run time anyway: guard.read_own_check reads as the check reader role,
--     read-only, and rolls back whatever the read did.
-- The view's dependencies are read from pg_depend (a view records every relation, column and
-- function its query uses; a whole-row reference, to_jsonb(t), is found in the stored query).
-- STABLE: it reads the catalog only.
CREATE OR REPLACE FUNCTION guard.own_check_bypass(check_view regclass)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    reporting_role text := guard.role('reporting');
    reason text;
BEGIN
    SELECT
        CASE
            WHEN c.relkind <> 'v' THEN format('%s is not a view', c.oid::regclass)
            WHEN NOT coalesce((
                SELECT o.option_value::boolean
                FROM pg_options_to_table(c.reloptions) AS o
                WHERE o.option_name = 'security_invoker'
            ), FALSE)
                THEN format(
                    '%s runs with its owner''s rights (security_invoker is not set), so every'
                    ' reader would see every company: create it WITH (security_invoker = TRUE)',
                    c.oid::regclass
                )
            WHEN r.rolsuper OR r.rolbypassrls
                THEN format(
                    '%s is owned by %s, which bypasses row-level security (%s): detection'
                    ' would read every row of every table into its alerts',
                    c.oid::regclass, quote_ident(r.rolname),
                    CASE WHEN r.rolsuper THEN 'a superuser' ELSE 'BYPASSRLS' END
                )
        END
    INTO reason
    FROM pg_class AS c
    INNER JOIN pg_roles AS r ON c.relowner = r.oid
    WHERE c.oid = check_view;
    IF reason IS NOT NULL THEN
        RETURN reason;
    END IF;

    WITH RECURSIVE walked (view_oid) AS (
        -- the check view, then every view it reads that runs with the reader's rights
        SELECT check_view::oid
        UNION
        SELECT d.refobjid
        FROM walked AS w
        INNER JOIN pg_rewrite AS rw ON w.view_oid = rw.ev_class
        INNER JOIN pg_depend AS d
            ON
                d.classid = 'pg_rewrite'::regclass
                AND rw.oid = d.objid
                AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid <> w.view_oid
        INNER JOIN pg_class AS v ON d.refobjid = v.oid AND v.relkind = 'v'
        WHERE coalesce((
            SELECT o.option_value::boolean
            FROM pg_options_to_table(v.reloptions) AS o
            WHERE o.option_name = 'security_invoker'
        ), FALSE)
    ),

    used AS (
        -- what each walked view's query uses: relations (with the columns it names; a whole-row
        -- reference, to_jsonb(t), names none, so a view that makes one is taken to read every
        -- column of what it reads) and functions
        SELECT
            d.refclassid,
            d.refobjid,
            array_agg(d.refobjsubid::smallint) FILTER (WHERE d.refobjsubid > 0) AS columns,
            bool_or(rw.ev_action::text ~ ':varattno 0 ') AS whole_rows
        FROM walked AS w
        INNER JOIN pg_rewrite AS rw ON w.view_oid = rw.ev_class
        INNER JOIN (
            SELECT d.objid, d.refclassid, d.refobjid, d.refobjsubid
            FROM pg_depend AS d
            WHERE
                d.classid = 'pg_rewrite'::regclass
                AND d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass)
            UNION ALL
            -- PostgreSQL's own relations (pg_authid, ...): pg_depend records no dependency on a
            -- built-in object, so they are read from the stored query, as read whole
            SELECT r.oid, 'pg_class'::regclass, t.id[1]::oid, 0
            FROM pg_rewrite AS r
            CROSS JOIN LATERAL regexp_matches(r.ev_action::text, ':relid (\d+)', 'g') AS t (id)
            WHERE r.ev_class IN (SELECT w2.view_oid FROM walked AS w2) AND t.id[1]::oid < 16384
        ) AS d
            ON rw.oid = d.objid AND d.refobjid <> w.view_oid
        GROUP BY d.refclassid, d.refobjid
    ),

    called AS (
        -- every function each walked view's query calls, PostgreSQL's own included: pg_depend
        -- records no dependency on a built-in object, so they are read from the stored query
        SELECT DISTINCT f.id[1]::oid AS function_oid
        FROM walked AS w
        INNER JOIN pg_rewrite AS rw ON w.view_oid = rw.ev_class
        CROSS JOIN LATERAL regexp_matches(rw.ev_action::text, ':funcid (\d+)', 'g') AS f (id)
    )

    SELECT found.why INTO reason
    FROM (
        -- a view that runs with its owner's rights, neither Booking Guard's nor PostgreSQL's
        SELECT 1 AS n, format(
            'reads %s, a view that runs with its owner''s rights (security_invoker is not set)',
            c.oid::regclass
        ) AS why
        FROM used AS u
        INNER JOIN pg_class AS c ON u.refobjid = c.oid
        WHERE
            u.refclassid = 'pg_class'::regclass
            AND c.relkind = 'v'
            AND c.oid NOT IN (SELECT w.view_oid FROM walked AS w)
            AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
            AND NOT EXISTS (
                SELECT FROM guard.definitions AS s
                WHERE
                    c.relnamespace = 'guard'::regnamespace
                    AND s.kind = 'view'
                    AND split_part(s.path, '/', 2) = 'guard.' || c.relname || '.sql'
            )
        UNION ALL
        -- a relation, or columns of it, that the reporting role may not read
        SELECT 2, format(
            'reads %s%s, which the reporting role %s may not read: its rows would reach reporting'
            ' through the check''s alerts',
            c.oid::regclass,
            coalesce(' (' || (
                SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                FROM pg_attribute AS a
                WHERE
                    a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND (u.whole_rows OR a.attnum = ANY(u.columns))
                    AND NOT has_column_privilege(reporting_role, c.oid, a.attnum, 'SELECT')
            ) || ')', ''),
            quote_ident(reporting_role)
        )
        FROM used AS u
        INNER JOIN pg_class AS c ON u.refobjid = c.oid
        WHERE
            u.refclassid = 'pg_class'::regclass
            AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
            -- another check view: guard.apply_grants grants every one to reporting
            AND NOT (c.relnamespace = 'guard'::regnamespace AND c.relkind = 'v' AND c.relname LIKE 'check\_%')
            AND NOT has_table_privilege(reporting_role, c.oid, 'SELECT')
            AND (
                (u.columns IS NULL AND NOT has_any_column_privilege(reporting_role, c.oid, 'SELECT'))
                OR EXISTS (
                    SELECT FROM pg_attribute AS a
                    WHERE
                        a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND (u.whole_rows OR a.attnum = ANY(u.columns))
                        AND NOT has_column_privilege(reporting_role, c.oid, a.attnum, 'SELECT')
                )
            )
        UNION ALL
        -- a function that runs with its owner's rights, or one of your own whose reads the
        -- catalog does not show (they would run with detection's rights), not Booking Guard's
        SELECT 3, CASE
            WHEN p.prosecdef THEN format(
                'calls %s, which runs with its owner''s rights (SECURITY DEFINER)', p.oid::regprocedure
            )
            ELSE format(
                'calls %s, a %s function whose reads are not visible to this check (they would'
                ' run with detection''s rights): write what it does into the view',
                p.oid::regprocedure, l.lanname
            )
        END
        FROM used AS u
        INNER JOIN pg_proc AS p ON u.refobjid = p.oid
        INNER JOIN pg_language AS l ON p.prolang = l.oid
        WHERE
            u.refclassid = 'pg_proc'::regclass
            AND (p.prosecdef OR (l.lanname NOT IN ('internal', 'c') AND p.pronamespace <> 'pg_catalog'::regnamespace))
            AND NOT EXISTS (
                SELECT FROM guard.definitions AS s
                WHERE
                    p.pronamespace = 'guard'::regnamespace
                    AND s.path = 'functions/guard.' || p.proname || '.sql'
            )
        UNION ALL
        -- a function that runs a query given as text or reads a relation named at run time
        -- (query_to_xml, table_to_xml, ...): what it reads is not in the catalog; or a VOLATILE
        -- one (it may change something: a setting, a lock, a large object, a row): a check reads
        SELECT 4, CASE
            WHEN p.proname ~ '(^(query|table|cursor|schema|database)_to_xml|_xmlschema$)' THEN format(
                'calls %s, which reads what a query or name given at run time reads: the catalog'
                ' cannot show what that is', p.oid::regprocedure
            )
            ELSE format(
                'calls %s, a VOLATILE function (it may change a setting, a lock or a row): a check'
                ' only reads', p.oid::regprocedure
            )
        END
        FROM called AS u
        INNER JOIN pg_proc AS p ON u.function_oid = p.oid
        WHERE
            -- Booking Guard's VOLATILE functions too (guard.rollback_booking)
            (p.provolatile = 'v' OR p.proname ~ '(^(query|table|cursor|schema|database)_to_xml|_xmlschema$)')
    ) AS found
    ORDER BY found.n, found.why
    LIMIT 1;
    IF reason IS NOT NULL THEN
        RETURN format('%s %s', check_view, reason);
    END IF;
    RETURN NULL;
END;
$$;
