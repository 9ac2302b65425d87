-- (Re)apply Booking Guard's ownership and privileges: every object in schema guard is handed to
-- the owner role, PUBLIC loses EXECUTE on the guard functions, and each kind of role gets what
-- guard.role_grants lists (and every detection view, guard.check_*, for reporting and
-- reviewer), under the names guard.role_names gives them. Every migration that creates or
-- re-creates an object in schema guard ends by calling it, so ownership and grants survive DROP
-- and CREATE (CREATE OR REPLACE keeps them anyway). Idempotent; it adds, it never takes a DBA's
-- own grants away (guard db verify reports those). Run by the migrating user, a member of the
-- owner role, often a superuser: so a row Booking Guard may not grant (guard.role_grant_refusal:
-- another schema's object, a privilege outside the list; written before the table's trigger
-- refused such rows, or while it was disabled) is skipped with a WARNING naming it and why, and
-- so is a row for a role guard.role_names maps to a role that does not exist, a superuser or one
-- of PostgreSQL's predefined roles. An owner role that is one of those is refused outright.
CREATE OR REPLACE FUNCTION guard.apply_grants()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    owner_role text := guard.role('owner');
    reader text;
    obj record;
    granted record;
    target text;
    column_list text;
    privilege_list text;
    checker oid := to_regrole(quote_ident(guard.check_reader()));
    -- the registered own checks' views, which are the check reader's
    own_check_views text[];
    -- kind -> why its role may not be granted to (absent: it may)
    unfit jsonb := (
        SELECT coalesce(jsonb_object_agg(k.kind, k.reason), '{}')
        FROM (
            SELECT
                n.kind,
                CASE
                    WHEN r.oid IS NULL THEN format('role %I does not exist', n.role_name)
                    WHEN r.rolsuper THEN format('role %I is a superuser', n.role_name)
                    WHEN r.rolname LIKE 'pg\_%' THEN
                        format('role %I is one of PostgreSQL''s predefined roles', n.role_name)
                END AS reason
            FROM guard.role_names AS n
            LEFT JOIN pg_roles AS r ON n.role_name = r.rolname
        ) AS k
        WHERE k.reason IS NOT NULL
    );
BEGIN
    IF unfit ? 'owner' THEN
        RAISE EXCEPTION 'Booking Guard''s owner role may not be that role: %', unfit ->> 'owner'
            USING
                ERRCODE = 'insufficient_privilege',
                HINT = 'guard.role_names names the owner role; its objects and SECURITY DEFINER'
                || ' functions would run with that role''s rights.';
    END IF;
    -- (read before the loop below alters guard.checks itself)
    own_check_views := ARRAY(
        SELECT k.check_view FROM guard.checks AS k
        WHERE k.check_view IS NOT NULL AND k.check_view <> ALL(guard.shipped_check_views())
    );
    -- Ownership: the schema and everything in it. Sequences of identity columns and row types of
    -- tables follow their table.
    IF (SELECT n.nspowner::regrole::text FROM pg_namespace AS n WHERE n.nspname = 'guard')
        IS DISTINCT FROM quote_ident(owner_role) THEN
        EXECUTE format('ALTER SCHEMA guard OWNER TO %I', owner_role);
    END IF;
    FOR obj IN
        SELECT
            CASE c.relkind
                WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW'
                WHEN 'S' THEN 'SEQUENCE'
                WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE'
            END AS object_type,
            c.oid::regclass::text AS object_name
        FROM pg_class AS c
        WHERE
            c.relnamespace = 'guard'::regnamespace
            AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND c.relowner <> to_regrole(quote_ident(owner_role))
            -- a registered own check's view is the check reader's (below)
            AND NOT (c.relkind = 'v' AND c.relname = ANY(own_check_views))
            AND NOT EXISTS (
                SELECT FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
            )
        UNION ALL
        SELECT 'ROUTINE', p.oid::regprocedure::text
        FROM pg_proc AS p
        WHERE
            p.pronamespace = 'guard'::regnamespace AND p.proowner <> to_regrole(quote_ident(owner_role))
            AND p.oid <> 'guard.read_own_check(text, timestamptz, timestamptz, bigint, bigint[], boolean)'::regprocedure
        UNION ALL
        SELECT 'TYPE', t.oid::regtype::text
        FROM pg_type AS t
        LEFT JOIN pg_class AS r ON t.typrelid = r.oid
        WHERE
            t.typnamespace = 'guard'::regnamespace
            AND t.typowner <> to_regrole(quote_ident(owner_role))
            AND t.typelem = 0
            AND (t.typrelid = 0 OR r.relkind = 'c')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', obj.object_type, obj.object_name, owner_role);
    END LOOP;

    -- Nothing for PUBLIC: a function is EXECUTE-able by PUBLIC unless revoked.
    REVOKE ALL ON SCHEMA guard FROM PUBLIC;
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA guard FROM PUBLIC;
    -- Functions the owner role creates later start without PUBLIC's EXECUTE too. (A per-schema
    -- default cannot take away the global default's EXECUTE, hence no IN SCHEMA.)
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', owner_role
    );

    -- What each kind of role may do: guard.role_grants, each row checked again (its trigger may
    -- have been disabled, or the row written before it existed). The object names are resolved
    -- through the reg* types and printed by them, quoted.
    FOR granted IN
        SELECT
            g.role_kind,
            n.role_name,
            g.object_type,
            g.object_name,
            g.privileges,
            g.columns,
            coalesce(
                guard.role_grant_refusal(
                    g.role_kind, g.object_type, g.object_name, g.privileges, g.columns
                ),
                unfit ->> g.role_kind,
                CASE WHEN n.role_name IS NULL THEN 'guard.role_names names no role of this kind' END
            ) AS refusal
        FROM guard.role_grants AS g
        LEFT JOIN guard.role_names AS n ON g.role_kind = n.kind
        ORDER BY g.role_kind, g.object_type, g.object_name, g.privileges
    LOOP
        IF granted.refusal IS NOT NULL THEN
            RAISE WARNING 'guard.apply_grants skipped the row (%, %, %, %) of guard.role_grants: %',
                quote_nullable(left(granted.role_kind, 200)),
                quote_nullable(left(granted.object_type, 200)),
                quote_nullable(left(granted.object_name, 200)),
                quote_nullable(left(granted.privileges::text, 200)),
                granted.refusal
                USING HINT = 'Delete the row; `guard db verify` names every row Booking Guard'
                || ' does not ship.';
            CONTINUE;
        END IF;
        target := CASE granted.object_type
            WHEN 'SCHEMA' THEN 'SCHEMA ' || granted.object_name::regnamespace::text
            WHEN 'TABLE' THEN 'TABLE ' || granted.object_name::regclass::text
            ELSE 'FUNCTION ' || granted.object_name::regprocedure::text
        END;
        -- privileges are words from a closed list (guard.role_grants' CHECK); columns quoted
        column_list := (
            SELECT ' (' || string_agg(format('%I', c.name), ', ' ORDER BY c.n) || ')'
            FROM unnest(granted.columns) WITH ORDINALITY AS c (name, n)
        );
        privilege_list := (
            SELECT string_agg(p.privilege || coalesce(column_list, ''), ', ' ORDER BY p.n)
            FROM unnest(granted.privileges) WITH ORDINALITY AS p (privilege, n)
        );
        EXECUTE format('GRANT %s ON %s TO %I', privilege_list, target, granted.role_name);
    END LOOP;
    -- The sequences the application's tables draw their ids from follow the tables: a role that
    -- may insert rows gets USAGE on them (guard.insert_sequences).
    FOR granted IN
        SELECT n.role_name, q.sequence_name
        FROM guard.insert_sequences() AS q
        INNER JOIN guard.role_names AS n ON q.role_kind = n.kind
        WHERE NOT unfit ? q.role_kind
        ORDER BY 1, 2
    LOOP
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', granted.sequence_name, granted.role_name);
    END LOOP;

    -- The check reader (guard.read_own_check runs every own check as it): exactly what the
    -- reporting role may read, of every company, taken again from reporting at every apply, and
    -- nothing else: not the functions that run with their owner's rights, nothing to write.
    -- Its own objects (the views it was given, its function) keep their owner's privileges.
    IF checker IS NULL OR (SELECT r.rolsuper OR r.rolbypassrls OR r.rolcanlogin FROM pg_roles AS r WHERE r.oid = checker) THEN
        -- guard.read_own_check refuses to run as anyone else: own checks are not run
        RAISE WARNING 'the check reader role % is missing, may log in, is a superuser or bypasses'
            ' row-level security: own checks are not run until it is fixed', guard.check_reader()
            USING HINT = 'migration 0104_check_reader_role creates it; guard db verify names it';
    ELSE
        -- ALTER ... OWNER TO the check reader needs its CREATE on the schema (here, and when
        -- register_check hands a view to it); what it creates there is read-only and rolled back
        -- (guard.read_own_check), and nothing else runs as it
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA guard TO %I', guard.check_reader());
        EXECUTE format(
            'ALTER FUNCTION guard.read_own_check(text, timestamptz, timestamptz, bigint, bigint[], boolean) OWNER TO %I',
            guard.check_reader()
        );
    END IF;
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION guard.read_own_check(text, timestamptz, timestamptz, bigint, bigint[], boolean) TO %I',
        owner_role
    );
    -- Registered own checks' views are the check reader's: read with its rights whoever reads.
    FOR obj IN
        SELECT c.oid::regclass::text AS object_name
        FROM guard.checks AS k
        INNER JOIN pg_class AS c ON c.relname = k.check_view AND c.relnamespace = 'guard'::regnamespace AND c.relkind = 'v'
        WHERE k.check_view <> ALL(guard.shipped_check_views()) AND c.relowner <> checker AND checker IS NOT NULL
        ORDER BY 1
    LOOP
        EXECUTE format('ALTER VIEW %s OWNER TO %I', obj.object_name, guard.check_reader());
    END LOOP;


    -- Every detection view by its name (a check added later needs no row in guard.role_grants):
    -- the shipped ones and the registered own checks that guard.own_check_bypass passes. Any other
    -- guard.check_* view (refused by register_check, never registered, or unsafe since) is
    -- taken away from reporting and reviewer: its rows were never judged fit for them.
    FOREACH reader IN ARRAY ARRAY(
        SELECT guard.role(k.kind) FROM unnest(ARRAY['reporting', 'reviewer']) AS k (kind)
        WHERE NOT unfit ? k.kind
    ) LOOP
        FOR obj IN
            SELECT
                c.oid::regclass::text AS object_name,
                c.relname = ANY(guard.shipped_check_views())
                OR (
                    EXISTS (SELECT FROM guard.checks AS k WHERE k.check_view = c.relname)
                    AND guard.own_check_bypass(c.oid) IS NULL
                ) AS fit
            FROM pg_class AS c
            WHERE
                c.relnamespace = 'guard'::regnamespace
                AND c.relkind = 'v'
                AND c.relname LIKE 'check\_%'
            ORDER BY 1
        LOOP
            EXECUTE format(
                '%s SELECT ON TABLE %s %s %I',
                CASE WHEN obj.fit THEN 'GRANT' ELSE 'REVOKE' END, obj.object_name,
                CASE WHEN obj.fit THEN 'TO' ELSE 'FROM' END, reader
            );
        END LOOP;
    END LOOP;

    -- What the check reader may read: taken from reporting once its grants are complete.
    IF NOT unfit ? 'reporting' THEN
        PERFORM guard.sync_check_reader();
    END IF;
END;
$$;
