-- The checks a pass over the whole history runs, in its order (guard.run_checks_between, and
-- `guard check --all` one at a time): the enabled checks that have a view, Booking Guard's before
-- a DBA's own, and those with an open check_failed alert last, so that neither a slow own check
-- nor a failing one holds up the rest.
CREATE OR REPLACE FUNCTION guard.history_checks()
RETURNS TABLE (check_id text, rule_id text, check_view text, description text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    SELECT k.id, k.rule_id, k.check_view, k.description
    FROM guard.checks AS k
    CROSS JOIN (
        SELECT array_agg(a.details ->> 'check') AS checks
        FROM guard.alerts AS a
        WHERE a.status = 'open' AND a.check_id = 'check_failed'
    ) AS failing
    WHERE k.enabled AND k.check_view IS NOT NULL
    ORDER BY
        k.check_view <> ALL(guard.shipped_check_views()),
        k.id = ANY(coalesce(failing.checks, '{}')),
        k.id;
$$;
