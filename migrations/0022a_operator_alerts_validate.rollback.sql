-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0022_operator_alerts' rollback restores the narrower one.
DO $$
BEGIN
    NULL;
END;
$$;
