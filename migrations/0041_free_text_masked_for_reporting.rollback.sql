-- Rollback of 0041_free_text_masked_for_reporting: reporting reads those tables and columns
-- whole again. REVOKE at table level takes the column grants with it, then the table-level
-- SELECT comes back.

DO $$
BEGIN
    EXECUTE format(
        'REVOKE SELECT ON TABLE guard.alerts, guard.review_items, guard.correction_audit FROM %I',
        guard.role('reporting')
    );
    EXECUTE format(
        'GRANT SELECT ON TABLE guard.alerts, guard.review_items, guard.correction_audit TO %I',
        guard.role('reporting')
    );
    EXECUTE format(
        'GRANT SELECT (booking_details, booking_failure_reason) ON TABLE public.calls TO %I',
        guard.role('reporting')
    );
END;
$$;
