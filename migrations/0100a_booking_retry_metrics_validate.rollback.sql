-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0100_booking_retry_metrics's rollback replaces or drops both.
DO $$
BEGIN
    NULL;
END;
$$;
