-- The application's time zone (setting app_time_zone, an IANA name; '' = undeclared = UTC): the
-- zone in which the application writes its `timestamp without time zone` columns. Read it once
-- per statement, `(SELECT guard.app_time_zone())`, and hand it to guard.app_time: called per row
-- it costs a settings lookup per row.
CREATE OR REPLACE FUNCTION guard.app_time_zone()
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, guard
AS $$
    SELECT coalesce(nullif((SELECT s.value #>> '{}' FROM guard.settings AS s WHERE s.key = 'app_time_zone'), ''), 'UTC');
$$;
