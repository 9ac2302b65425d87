-- The owner role (the booking-attempt functions, reconciliation, detection) maintains every
-- tenant's rows of guard.booking_attempts. The role name is configurable (guard.role_names).
DROP POLICY IF EXISTS owner_maintenance ON guard.booking_attempts;

DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_maintenance ON guard.booking_attempts FOR ALL TO %I USING (TRUE) WITH CHECK (TRUE)',
        guard.role('owner')
    );
END;
$$;
