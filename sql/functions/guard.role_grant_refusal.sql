-- Why Booking Guard may not grant what one row of guard.role_grants asks, or NULL when it may:
-- a kind of Booking Guard role; the schema guard (USAGE), a table (partitioned or not), view or
-- materialized view in schema guard or one of the booking tables it manages (public.calls,
-- appointments, companies, customers, services: SELECT, INSERT, UPDATE, DELETE, columns of that
-- table), or a function in schema guard (EXECUTE); the tables that decide who may do what and
-- what was applied are read-only to rows. Names are resolved under search_path pg_catalog, as
-- guard.apply_grants resolves them, and never spliced. Read by the trigger that refuses such a
-- row when it is written, by guard.apply_grants, which skips and reports a row that got in
-- before (or past) the trigger, and by `guard db verify`.
CREATE OR REPLACE FUNCTION guard.role_grant_refusal(
    role_kind text, object_type text, object_name text, privileges text[], columns text[]
)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    allowed text[];
    target oid;
    target_schema text;
    target_name text;
    target_kind "char";
    shown text := quote_literal(left(object_name, 200));
    unknown_columns text;
BEGIN
    IF role_kind IS NULL OR object_type IS NULL OR object_name IS NULL OR privileges IS NULL THEN
        RETURN 'role_kind, object_type, object_name and privileges may not be NULL';
    END IF;
    IF role_kind NOT IN ('owner', 'application', 'reporting', 'reviewer') THEN
        RETURN format(
            '%L is not a kind of Booking Guard role (owner, application, reporting, reviewer)',
            left(role_kind, 200)
        );
    END IF;
    allowed := CASE object_type
        WHEN 'SCHEMA' THEN ARRAY['USAGE']
        WHEN 'TABLE' THEN ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']
        WHEN 'FUNCTION' THEN ARRAY['EXECUTE']
    END;
    IF allowed IS NULL THEN
        RETURN format('object type %L is not SCHEMA, TABLE or FUNCTION', left(object_type, 200));
    END IF;
    IF
        cardinality(privileges) = 0
        OR array_ndims(privileges) <> 1
        OR array_position(privileges, NULL) IS NOT NULL
        OR NOT privileges <@ allowed
    THEN
        RETURN format(
            'privileges %s: a %s row grants %s only', left(privileges::text, 200), object_type,
            array_to_string(allowed, ', ')
        );
    END IF;
    IF columns IS NOT NULL AND (
        object_type <> 'TABLE'
        OR cardinality(columns) = 0
        OR array_ndims(columns) <> 1
        OR array_position(columns, NULL) IS NOT NULL
        OR NOT privileges <@ ARRAY['SELECT', 'INSERT', 'UPDATE']
    ) THEN
        RETURN 'columns: a list of column names, for SELECT, INSERT or UPDATE on a table only';
    END IF;

    IF object_type = 'SCHEMA' THEN
        IF object_name <> 'guard' THEN
            RETURN format('schema %s is not Booking Guard''s: the one schema is guard', shown);
        END IF;
        RETURN NULL;
    END IF;

    BEGIN
        target := CASE object_type
            WHEN 'TABLE' THEN to_regclass(object_name)::oid
            ELSE to_regprocedure(object_name)::oid
        END;
    EXCEPTION WHEN OTHERS THEN
        -- a malformed name, an unknown argument type: no object of Booking Guard's
        target := NULL;
    END;
    IF target IS NULL THEN
        RETURN format('%s names no %s', shown, lower(object_type));
    END IF;

    IF object_type = 'FUNCTION' THEN
        SELECT n.nspname, p.prokind INTO target_schema, target_kind
        FROM pg_proc AS p INNER JOIN pg_namespace AS n ON p.pronamespace = n.oid
        WHERE p.oid = target;
        IF target_schema <> 'guard' OR target_kind <> 'f' THEN
            RETURN format(
                '%s%s is not a function of Booking Guard''s (schema guard)',
                CASE WHEN target_schema = 'pg_catalog' THEN 'pg_catalog.' END, target::regprocedure
            );
        END IF;
        RETURN NULL;
    END IF;

    SELECT n.nspname, c.relname, c.relkind INTO target_schema, target_name, target_kind
    FROM pg_class AS c INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid
    WHERE c.oid = target;
    IF
        target_kind NOT IN ('r', 'p', 'v', 'm')
        OR NOT (
            target_schema = 'guard'
            OR (
                target_schema = 'public'
                AND target_name IN ('calls', 'appointments', 'companies', 'customers', 'services')
            )
        )
    THEN
        RETURN format(
            '%I.%I is not a table of Booking Guard''s (schema guard, or public.calls,'
            ' appointments, companies, customers, services)', target_schema, target_name
        );
    END IF;
    IF
        target_schema = 'guard'
        AND target_name IN (
            'role_names', 'role_grants', 'tenant_bindings', 'definitions', 'migration_checksums',
            'baseline_objects'
        )
        AND NOT privileges <@ ARRAY['SELECT']
    THEN
        RETURN format(
            '%s decides who may do what, or records what was applied: a row may grant SELECT on it'
            ' only', target::regclass
        );
    END IF;
    IF columns IS NOT NULL THEN
        unknown_columns := (
            SELECT string_agg(quote_ident(left(c.name, 200)), ', ' ORDER BY c.n)
            FROM unnest(columns) WITH ORDINALITY AS c (name, n)
            WHERE NOT EXISTS (
                SELECT FROM pg_attribute AS a
                WHERE a.attrelid = target AND a.attname = c.name AND a.attnum > 0
                    AND NOT a.attisdropped
            )
        );
        IF unknown_columns IS NOT NULL THEN
            RETURN format('%s has no column %s', target::regclass, unknown_columns);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
