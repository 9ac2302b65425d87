-- The application's columns that hold wall-clock times without a time zone (`timestamp without
-- time zone`: Laravel's timestamps), as `table.column`, while setting app_time_zone is not
-- declared (empty: they are read as UTC). Empty once a zone is declared. `guard db apply` and
-- `guard db verify` print a NOTE from it; not drift: right for an application that writes UTC.
CREATE OR REPLACE FUNCTION guard.zoneless_columns()
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    SELECT c.table_name::text || '.' || c.column_name::text
    FROM information_schema.columns AS c
    WHERE
        c.table_schema = 'public'
        AND c.table_name IN ('calls', 'appointments', 'customers', 'companies', 'services')
        AND c.data_type = 'timestamp without time zone'
        AND (SELECT s.value #>> '{}' FROM guard.settings AS s WHERE s.key = 'app_time_zone') = ''
    ORDER BY c.table_name, c.ordinal_position;
$$;
