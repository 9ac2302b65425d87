-- Row-level security by company on guard.booking_attempts (see guard.create_tenant_isolation):
-- every role sees and writes only the rows of the companies bound to it; FORCE, so the owner too,
-- whose jobs pass by guard.booking_attempts.owner_maintenance. The application writes the journal
-- only through the SECURITY DEFINER booking-attempt functions.
SELECT guard.create_tenant_isolation('guard.booking_attempts');
