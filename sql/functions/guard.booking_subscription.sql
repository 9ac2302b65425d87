-- The subscription through which this database receives the booking tables (public.calls or
-- public.appointments) by logical replication, NULL when it receives neither: a subscriber's
-- copy (a warehouse, a BI copy) is not where detection runs. Its rows arrive from the publisher,
-- which has the alerts; detecting on the copy would open alerts the publisher does not have
-- (and reconcile would correct rows the publisher overwrites). guard.run_job skips the detect,
-- sweep and reconcile jobs there, and `guard check` and `guard reconcile` say so
-- (docs/dba.md, "A warehouse or BI copy by logical replication").
-- pg_subscription_rel and the columns of pg_subscription read here are readable by every
-- role (only subconninfo is kept from them), so the owner and the jobs login can call it.
CREATE OR REPLACE FUNCTION guard.booking_subscription()
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
SELECT min(s.subname::text)
FROM pg_catalog.pg_subscription_rel AS r
INNER JOIN pg_catalog.pg_subscription AS s ON r.srsubid = s.oid
WHERE
    s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
    AND r.srrelid IN (
        pg_catalog.to_regclass('public.calls'), pg_catalog.to_regclass('public.appointments')
    );
$$;
