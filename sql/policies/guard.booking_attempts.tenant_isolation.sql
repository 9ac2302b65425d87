-- Row-level security by company on guard.booking_attempts, as on guard.alerts: every role sees
-- only the rows of the companies bound to it (guard.visible_companies; unbound: nothing). FORCE,
-- so that the owner obeys it too; the owner's functions and jobs pass by
-- guard.booking_attempts.owner_maintenance. The application writes the journal only through
-- the SECURITY DEFINER booking-attempt functions.
ALTER TABLE guard.booking_attempts ENABLE ROW LEVEL SECURITY;

ALTER TABLE guard.booking_attempts FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON guard.booking_attempts;

CREATE POLICY tenant_isolation ON guard.booking_attempts
FOR ALL
TO public
USING (company_id = ANY((SELECT guard.visible_companies())::bigint[]))  -- noqa: CP03
WITH CHECK (company_id = ANY((SELECT guard.visible_companies())::bigint[]));  -- noqa: CP03
