-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0075_breaker_values_in_range's rollback drops it.
DO $$
BEGIN
    NULL;
END;
$$;
