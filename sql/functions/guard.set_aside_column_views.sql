-- The application's own migrations: step 1 of guard.alter_column_type. Drops Booking Guard's
-- views that read one column of a table (and the views built on them), keeping each one's
-- definition, options, owner, comment and privileges in a temporary table that
-- guard.restore_column_views reads back in the same transaction (ON COMMIT DROP: a transaction
-- that never restores them ends with the views gone, and `guard db apply` puts them back).
-- Returns how many views were set aside.
-- Refused with an error, and nothing dropped: a NULL argument, an unknown column, a session
-- whose login is not a member of the table's owner (42501), a view outside the guard schema that
-- reads the column (the application's own: yours to drop and re-create).
-- SECURITY DEFINER: the views belong to the owner role, the table to the application; the
-- temporary table is created here, so only the owner role may write what is restored.
CREATE OR REPLACE FUNCTION guard.set_aside_column_views(target regclass, column_name name)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    column_number smallint;
    foreign_view text;
    view_to_drop record;
    views_to_drop jsonb;
    set_aside integer := 0;
    saved text := 'pg_temp.guard_set_aside_views';
BEGIN
    IF set_aside_column_views.target IS NULL OR set_aside_column_views.column_name IS NULL THEN
        RAISE EXCEPTION 'set_aside_column_views needs a table and a column'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.attnum INTO column_number
    FROM pg_attribute AS a
    WHERE
        a.attrelid = set_aside_column_views.target
        AND a.attname = set_aside_column_views.column_name
        AND a.attnum > 0
        AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of % does not exist',
            set_aside_column_views.column_name, set_aside_column_views.target
            USING ERRCODE = 'undefined_column';
    END IF;
    IF NOT pg_has_role(
        session_user,
        (SELECT c.relowner FROM pg_class AS c WHERE c.oid = set_aside_column_views.target),
        'MEMBER'
    ) THEN
        RAISE EXCEPTION 'permission denied: only the owner of % may change its columns',
            set_aside_column_views.target
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF to_regclass('pg_temp.guard_set_aside_views') IS NOT NULL THEN
        RAISE EXCEPTION 'views are set aside already in this transaction: restore them first'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    CREATE TEMPORARY TABLE guard_set_aside_views (
        depth integer NOT NULL,
        schema_name name NOT NULL,
        view_name name NOT NULL,
        definition text NOT NULL,
        options text [],
        owner_name name NOT NULL,
        privileges aclitem [],
        description text
    ) ON COMMIT DROP;

    -- The temporary table is reached by dynamic SQL: it exists only from this call on.
    EXECUTE format($sql$
        WITH RECURSIVE dependents (view_oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1
            FROM pg_depend AS d
            INNER JOIN pg_rewrite AS r ON d.objid = r.oid
            WHERE
                d.classid = 'pg_rewrite'::regclass
                AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = $1
                AND d.refobjsubid = $2
                AND r.ev_class <> $1
            UNION
            SELECT r.ev_class, dependents.depth + 1
            FROM dependents
            INNER JOIN pg_depend AS d
                ON d.refobjid = dependents.view_oid AND d.refclassid = 'pg_class'::regclass
            INNER JOIN pg_rewrite AS r ON d.objid = r.oid
            WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> dependents.view_oid
        )
        INSERT INTO %s
        SELECT
            max(dependents.depth),
            n.nspname,
            c.relname,
            pg_get_viewdef(c.oid),
            c.reloptions,
            pg_get_userbyid(c.relowner),
            c.relacl,
            obj_description(c.oid, 'pg_class')
        FROM dependents
        INNER JOIN pg_class AS c ON dependents.view_oid = c.oid
        INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid
        GROUP BY c.oid, n.nspname, c.relname, c.reloptions, c.relowner, c.relacl
    $sql$, saved) USING set_aside_column_views.target, column_number;

    EXECUTE format($sql$
        SELECT format('%%I.%%I', v.schema_name, v.view_name)
        FROM %s AS v
        WHERE v.schema_name <> 'guard'
        LIMIT 1
    $sql$, saved) INTO foreign_view;
    IF foreign_view IS NOT NULL THEN
        RAISE EXCEPTION 'view % reads %.%: it is not Booking Guard''s, drop and re-create it yourself',
            foreign_view, set_aside_column_views.target, set_aside_column_views.column_name
            USING ERRCODE = 'dependent_objects_still_exist';
    END IF;
    EXECUTE format(
        'SELECT coalesce(jsonb_agg(to_jsonb(v) ORDER BY v.depth DESC, v.view_name), ''[]'') FROM %s AS v',
        saved
    ) INTO views_to_drop;
    FOR view_to_drop IN
        SELECT v.schema_name, v.view_name
        FROM jsonb_to_recordset(views_to_drop) AS v (depth integer, schema_name name, view_name name)
        ORDER BY v.depth DESC, v.view_name
    LOOP
        EXECUTE format('DROP VIEW %I.%I', view_to_drop.schema_name, view_to_drop.view_name);
        set_aside := set_aside + 1;
    END LOOP;
    RETURN set_aside;
END;
$$;
