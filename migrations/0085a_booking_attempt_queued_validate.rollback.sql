-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0085_booking_attempt_queued's rollback replaces it.
DO $$
BEGIN
    NULL;
END;
$$;
