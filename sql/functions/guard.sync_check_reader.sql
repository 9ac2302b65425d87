-- Give the check reader role (guard.check_reader(), which guard.read_own_check runs every own
-- check as) exactly what the reporting role may read in schemas guard and public, of every
-- company (row-level security confines reporting by its bindings; the check reader sees every
-- tenant, as detection must), and nothing else: no function that runs with its owner's rights,
-- nothing to write; and who it is (guard.role_names, guard.role(), guard.check_reader()). What
-- PUBLIC may read it has as every role has. Relations it owns (the own
-- check views registered to it, guard.read_own_check) keep their owner's privileges. Called by
-- guard.apply_grants at every apply, and by guard.register_check before it tries a view, so a
-- read granted to reporting since the last apply is the check reader's too. Idempotent: a
-- relation whose privileges are already right is not touched.
CREATE OR REPLACE FUNCTION guard.sync_check_reader()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    reporting text := guard.role('reporting');
    checker oid := to_regrole(quote_ident(guard.check_reader()));
    obj record;
BEGIN
    IF checker IS NULL THEN
        RAISE EXCEPTION 'the check reader role % does not exist', guard.check_reader()
            USING
                ERRCODE = 'undefined_object',
                HINT = 'migration 0104_check_reader_role creates it: run guard db apply as the migrating user';
    END IF;
    FOR obj IN
        SELECT
            c.oid::regclass::text AS object_name,
            c.relowner = checker AS own,
            -- what the check reader should hold, and what it holds, as 'whole', 'none' or the
            -- columns it may read: an apply that finds them equal changes nothing
            -- (what PUBLIC may read it has as every role has)
            CASE
                WHEN has_table_privilege('public', c.oid, 'SELECT') THEN 'none'
                -- who it is (guard.read_own_check asks guard.check_reader()): role names only
                WHEN c.oid = 'guard.role_names'::regclass THEN 'whole'
                WHEN has_table_privilege(reporting, c.oid, 'SELECT') THEN 'whole'
                ELSE coalesce((
                    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                    FROM pg_attribute AS a
                    WHERE
                        a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND has_column_privilege(reporting, c.oid, a.attnum, 'SELECT')
                        AND NOT has_column_privilege('public', c.oid, a.attnum, 'SELECT')
                ), 'none')
            END AS wanted,
            CASE
                WHEN EXISTS (
                    SELECT FROM aclexplode(c.relacl) AS e
                    WHERE e.grantee = checker AND e.privilege_type <> 'SELECT'
                ) OR EXISTS (
                    SELECT FROM pg_attribute AS a
                    CROSS JOIN LATERAL aclexplode(a.attacl) AS e
                    WHERE a.attrelid = c.oid AND e.grantee = checker AND e.privilege_type <> 'SELECT'
                ) THEN 'other'
                WHEN EXISTS (SELECT FROM aclexplode(c.relacl) AS e WHERE e.grantee = checker) THEN
                    CASE
                        WHEN EXISTS (
                            SELECT FROM pg_attribute AS a
                            CROSS JOIN LATERAL aclexplode(a.attacl) AS e
                            WHERE a.attrelid = c.oid AND e.grantee = checker
                        ) THEN 'other'
                        ELSE 'whole'
                    END
                ELSE coalesce((
                    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                    FROM pg_attribute AS a
                    WHERE
                        a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                        AND EXISTS (SELECT FROM aclexplode(a.attacl) AS e WHERE e.grantee = checker)
                ), 'none')
            END AS held
        FROM pg_class AS c
        WHERE
            -- Booking Guard's schema and the application's (where it grants reporting)
            c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
            AND c.relnamespace IN ('guard'::regnamespace, 'public'::regnamespace)
        ORDER BY 1
    LOOP
        CONTINUE WHEN obj.own OR obj.held = obj.wanted;
        IF obj.held <> 'none' THEN
            EXECUTE format('REVOKE ALL ON TABLE %s FROM %I', obj.object_name, guard.check_reader());
        END IF;
        IF obj.wanted = 'whole' THEN
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj.object_name, guard.check_reader());
        ELSIF obj.wanted <> 'none' THEN
            EXECUTE format('GRANT SELECT (%s) ON TABLE %s TO %I', obj.wanted, obj.object_name, guard.check_reader());
        END IF;
    END LOOP;
    FOR obj IN
        SELECT n.nspname::text AS object_name, has_schema_privilege(reporting, n.oid, 'USAGE') AS whole
        FROM pg_namespace AS n
        WHERE n.nspname = 'public'  -- guard.apply_grants gives it schema guard
        ORDER BY 1
    LOOP
        EXECUTE format(
            '%s USAGE ON SCHEMA %I %s %I',
            CASE WHEN obj.whole THEN 'GRANT' ELSE 'REVOKE' END, obj.object_name,
            CASE WHEN obj.whole THEN 'TO' ELSE 'FROM' END, guard.check_reader()
        );
    END LOOP;
    FOR obj IN
        SELECT
            p.oid::regprocedure::text AS object_name,
            NOT p.prosecdef AND (
                has_function_privilege(reporting, p.oid, 'EXECUTE')
                OR p.oid IN ('guard.check_reader()'::regprocedure, 'guard.role(text)'::regprocedure)
            ) AS whole
        FROM pg_proc AS p
        WHERE p.pronamespace = 'guard'::regnamespace AND p.proowner <> checker
        ORDER BY 1
    LOOP
        EXECUTE format(
            '%s EXECUTE ON FUNCTION %s %s %I',
            CASE WHEN obj.whole THEN 'GRANT' ELSE 'REVOKE' END, obj.object_name,
            CASE WHEN obj.whole THEN 'TO' ELSE 'FROM' END, guard.check_reader()
        );
    END LOOP;
END;
$$;
