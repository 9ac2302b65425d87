-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0017_app_function_hardening's rollback drops it.
DO $$
BEGIN
    NULL;
END;
$$;
