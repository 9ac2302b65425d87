-- An application column's time as an instant, whatever the session's TimeZone. A `timestamp
-- without time zone` column holds the wall-clock time of the application's zone (Laravel writes
-- app.timezone there): it is read in that zone, never in the session's, which PostgreSQL would
-- use for a comparison with now(). A timestamptz column is an instant already. PostgreSQL picks
-- the form by the column's type when a view or statement is planned, so one text serves both
-- schemas; the timestamptz form is inlined to the bare column (plans and indexes unchanged).
-- Pass the zone as `(SELECT guard.app_time_zone())`: evaluated once per statement.
CREATE OR REPLACE FUNCTION guard.app_time(wall_clock timestamp, zone text)
RETURNS timestamptz
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT wall_clock AT TIME ZONE zone;
$$;

CREATE OR REPLACE FUNCTION guard.app_time(instant timestamptz, zone text)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT instant;
$$;
