-- The application's own migrations: step 3 of guard.alter_column_type. Re-creates the views
-- guard.set_aside_column_views set aside in this transaction, each on what it was built on
-- first, with its options, owner, comment and privileges; returns how many.
-- Refused with an error: nothing set aside in this transaction, or a table of that name that the
-- owner role did not create (a session could otherwise hand it definitions to run).
-- SECURITY DEFINER: the views belong to the owner role.
CREATE OR REPLACE FUNCTION guard.restore_column_views()
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved regclass := to_regclass('pg_temp.guard_set_aside_views');
    saved_views jsonb;
    view_to_create record;
    grant_to_give record;
    restored integer := 0;
BEGIN
    IF saved IS NULL THEN
        RAISE EXCEPTION 'no views are set aside in this transaction'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (SELECT c.relowner FROM pg_class AS c WHERE c.oid = saved)
        IS DISTINCT FROM (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied: pg_temp.guard_set_aside_views is not Booking Guard''s'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- dynamic SQL: the temporary table exists only from guard.set_aside_column_views on
    EXECUTE format(
        'SELECT coalesce(jsonb_agg(to_jsonb(v) ORDER BY v.depth, v.view_name), ''[]'') FROM %s AS v',
        saved
    ) INTO saved_views;
    FOR view_to_create IN
        SELECT *
        FROM jsonb_to_recordset(saved_views) AS v (
            depth integer, schema_name name, view_name name, definition text, options text [],
            owner_name name, privileges aclitem [], description text
        )
        ORDER BY v.depth, v.view_name
    LOOP
        EXECUTE format(
            'CREATE VIEW %I.%I%s AS %s',
            view_to_create.schema_name,
            view_to_create.view_name,
            coalesce(' WITH (' || array_to_string(view_to_create.options, ', ') || ')', ''),
            view_to_create.definition
        );
        EXECUTE format(
            'ALTER VIEW %I.%I OWNER TO %I',
            view_to_create.schema_name, view_to_create.view_name, view_to_create.owner_name
        );
        IF view_to_create.description IS NOT NULL THEN
            EXECUTE format(
                'COMMENT ON VIEW %I.%I IS %L',
                view_to_create.schema_name, view_to_create.view_name, view_to_create.description
            );
        END IF;
        FOR grant_to_give IN
            SELECT p.privilege_type, p.grantee
            FROM aclexplode(view_to_create.privileges) AS p
            WHERE p.grantee <> (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = view_to_create.owner_name)
        LOOP
            EXECUTE format(
                'GRANT %s ON %I.%I TO %s',
                grant_to_give.privilege_type,
                view_to_create.schema_name,
                view_to_create.view_name,
                CASE
                    WHEN grant_to_give.grantee = 0 THEN 'PUBLIC'
                    ELSE quote_ident(pg_get_userbyid(grant_to_give.grantee))
                END
            );
        END LOOP;
        restored := restored + 1;
    END LOOP;
    EXECUTE format('DROP TABLE %s', saved);
    RETURN restored;
END;
$$;
