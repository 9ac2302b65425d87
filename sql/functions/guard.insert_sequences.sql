-- The sequences each kind of role needs to insert rows into the application's tables: for every
-- table outside schema guard that guard.role_grants lets it INSERT into, each sequence a column
-- draws from: a serial or bigserial column's (Laravel's `$t->id()`), any other nextval()
-- default's, and an identity column's. Without USAGE on a serial column's sequence every insert
-- fails (42501 permission denied for sequence). guard.apply_grants grants them; guard db verify
-- reports one not granted. A string body, not BEGIN ATOMIC: a rollback of guard.role_grants'
-- migration must be able to drop the table.
CREATE OR REPLACE FUNCTION guard.insert_sequences()
RETURNS TABLE (role_kind text, sequence_name regclass)
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    WITH inserted AS (
        SELECT
            g.role_kind,
            t.oid AS table_oid
        FROM guard.role_grants AS g
        -- a row guard.apply_grants would skip (guard.role_grant_refusal) names no table here:
        -- its name may not even parse
        INNER JOIN pg_class AS t
            ON t.oid = CASE
                WHEN guard.role_grant_refusal(
                    g.role_kind, g.object_type, g.object_name, g.privileges, g.columns
                ) IS NULL THEN to_regclass(g.object_name)
            END
        WHERE
            g.object_type = 'TABLE'
            AND 'INSERT' = any(g.privileges)
            AND t.relnamespace <> 'guard'::regnamespace
    )

    -- a column default calling nextval() depends on its sequence
    SELECT
        i.role_kind,
        d.refobjid::regclass
    FROM inserted AS i
    INNER JOIN pg_attrdef AS a ON i.table_oid = a.adrelid
    INNER JOIN pg_depend AS d
        ON
            d.classid = 'pg_attrdef'::regclass
            AND a.oid = d.objid
            AND d.refclassid = 'pg_class'::regclass
    INNER JOIN pg_class AS s ON d.refobjid = s.oid AND s.relkind = 'S'
    UNION
    -- a serial's or an identity column's own sequence depends on its table
    SELECT
        i.role_kind,
        d.objid::regclass
    FROM inserted AS i
    INNER JOIN pg_depend AS d
        ON
            d.refclassid = 'pg_class'::regclass
            AND i.table_oid = d.refobjid
            AND d.classid = 'pg_class'::regclass
            AND d.deptype IN ('a', 'i')
    INNER JOIN pg_class AS s ON d.objid = s.oid AND s.relkind = 'S'
    ORDER BY 1, 2;
$$;
