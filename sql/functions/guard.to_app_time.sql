-- An instant in the type of an application column (`like`, a column of the row written): for a
-- `timestamp without time zone` column the wall-clock time of the application's zone, for a
-- timestamptz column the instant itself. Booking Guard's own writes into the application's
-- columns (appointment_linked_at, customer_linked_at) go through it, so that they read like the
-- application's writes whatever the session's TimeZone. A bound compared with a column keeps the
-- column bare (its index serves the comparison): `col >= guard.to_app_time(since, (SELECT x.col
-- FROM public.calls AS x LIMIT 0), zone)`; the sub-select only names the column's type (it is
-- never run: no form reads `like`), and unlike `(NULL::public.calls).col` it does not tie the view
-- to the table's row type, which would stop the application altering any column of the table.
CREATE OR REPLACE FUNCTION guard.to_app_time(instant timestamptz, "like" timestamp, zone text)
RETURNS timestamp
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT instant AT TIME ZONE zone;
$$;

CREATE OR REPLACE FUNCTION guard.to_app_time(instant timestamptz, "like" timestamptz, zone text)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT instant;
$$;
