-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0100c_booking_attempt_trace_id's rollback drops it with its column.
DO $$
BEGIN
    NULL;
END;
$$;
