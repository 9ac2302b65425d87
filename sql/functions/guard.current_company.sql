-- The one company this transaction selected with guard.pin_company, or the one the login's own
-- default selects (ALTER ROLE ... SET booking_guard.company_id), or NULL. A selection, never an
-- authorisation: every session may change its own settings, so row-level security reads the
-- companies bound to the role (guard.visible_companies), and this can only narrow those to one
-- of them. The multi-tenant application may pin a company to have its SECURITY DEFINER
-- functions refuse other companies' rows (guard.assert_tenant).
-- Behind a transaction pooler (PgBouncer's pool_mode = transaction) a session-level value (SET,
-- set_config(..., false), the connection's options) stays on the server connection and reaches
-- the pooler's next client, so such a value would shift what another client sees. It is refused
-- with an error instead: the pin that counts is made in this very transaction (pin_company
-- records the transaction beside the company) or is the login's own default, which every server
-- connection of that login starts with. A plain SET LOCAL cannot be told from a session SET here,
-- so it is refused too.
-- Unset (the multi-tenant application, every job): one current_setting and nothing else.
-- SECURITY INVOKER: it reads only the caller's settings and pg_db_role_setting (readable by all).
CREATE OR REPLACE FUNCTION guard.current_company()
RETURNS bigint
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    selected text := current_setting('booking_guard.company_id', TRUE);
BEGIN
    IF selected IS NULL OR selected = '' THEN
        RETURN NULL;
    END IF;
    -- guard.pin_company's mark: this server process and this transaction's start
    IF current_setting('booking_guard.company_pin', TRUE)
        = pg_backend_pid()::text || '/' || extract(EPOCH FROM transaction_timestamp())::text THEN
        RETURN selected::bigint;
    END IF;
    -- the login's own default, the most specific one as PostgreSQL applies them
    IF selected = (
        SELECT substr(c.item, length('booking_guard.company_id=') + 1)
        FROM pg_db_role_setting AS s
        CROSS JOIN LATERAL unnest(s.setconfig) AS c (item)
        WHERE
            c.item LIKE 'booking\_guard.company\_id=%'
            AND s.setrole IN (0, (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = session_user))
            AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database()))
        ORDER BY s.setrole = 0, s.setdatabase = 0
        LIMIT 1
    ) THEN
        RETURN selected::bigint;
    END IF;
    RAISE EXCEPTION 'booking_guard.company_id = % was set for the session, not pinned in this transaction', selected
        USING
            ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A session setting (SET, SET LOCAL, set_config, the connection''s options) stays '
            'on the server connection, which a connection pooler hands to its next client.',
            HINT = 'Run SELECT guard.pin_company(<company id>) inside each transaction, or bind the '
            'login to the company (guard tenant grant LOGIN COMPANY_ID) and set nothing.';
END;
$$;
