-- The alerts table is an outbox; this is its wake-up call. One NOTIFY per statement that
-- inserted alerts (none for a statement that inserted nothing), delivered at commit.
CREATE OR REPLACE FUNCTION guard.notify_new_alerts()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF EXISTS (SELECT FROM new_alerts) THEN
        PERFORM pg_notify('guard_alerts', 'new');
    END IF;
    RETURN NULL;
END;
$$;
