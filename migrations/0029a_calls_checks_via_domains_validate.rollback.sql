-- Nothing to undo: a validated constraint cannot become NOT VALID again, and
-- 0029_calls_checks_via_domains' rollback drops the new CHECKs.
DO $$
BEGIN
    NULL;
END;
$$;
