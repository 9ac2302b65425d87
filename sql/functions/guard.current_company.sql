-- The one company this transaction selected with guard.pin_company, or the one the login's own
-- default selects (ALTER ROLE ... SET booking_guard.company_id), or NULL. A selection, never an
-- authorisation: every session may change its own settings, so row-level security reads the
-- companies bound to the role (guard.visible_companies), and this can only narrow those to one
-- of them. The multi-tenant application may pin a company to have its SECURITY DEFINER
-- functions refuse other companies' rows (guard.assert_tenant).
-- Behind a transaction pooler (PgBouncer's pool_mode = transaction) a session-level value (SET,
-- set_config(..., false), the connection's options) stays on the server connection and reaches
-- the pooler's next client, who did not set it. So such a value is ignored, never applied and
-- never an error: the selection that counts is the pin made in this very transaction
-- (pin_company records the transaction beside the company) or the login's own default, which
-- every server connection of that login starts with; a value that is neither gives way to the
-- default (NULL without one), with a WARNING on whichever client is on the connection (and in
-- the server log, where the refusal's ERROR was) that names guard.pin_company. A WARNING, not a
-- NOTICE: it reaches clients that hide notices (client_min_messages = warning), and no driver
-- turns it into an error. It comes with each call: a caller that calls this once per row warns
-- once per row. A plain SET LOCAL cannot be told from a session SET here, so it is ignored too;
-- an empty value is a value too (it does not clear the login's default).
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
    login_default text;
BEGIN
    -- never set on this connection: no login default either (it would be set from the start)
    IF selected IS NULL THEN
        RETURN NULL;
    END IF;
    -- guard.pin_company's mark: this server process and this transaction's start (a pin the
    -- transaction emptied again selects what an unpinned one does)
    IF selected <> '' AND current_setting('booking_guard.company_pin', TRUE)
        = pg_backend_pid()::text || '/' || extract(EPOCH FROM transaction_timestamp())::text THEN
        RETURN selected::bigint;
    END IF;
    -- the login's own default, the most specific one as PostgreSQL applies them
    login_default := coalesce((
        SELECT substr(c.item, length('booking_guard.company_id=') + 1)
        FROM pg_db_role_setting AS s
        CROSS JOIN LATERAL unnest(s.setconfig) AS c (item)
        WHERE
            c.item LIKE 'booking\_guard.company\_id=%'
            AND s.setrole IN (0, (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = session_user))
            AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database()))
        ORDER BY s.setrole = 0, s.setdatabase = 0
        LIMIT 1
    ), '');
    IF selected <> login_default THEN
        RAISE WARNING 'booking_guard.company_id = % is ignored: it was set for the session, not pinned in this transaction',
            quote_literal(selected)
            USING
                ERRCODE = '01000',
                DETAIL = CASE
                    WHEN login_default = '' THEN 'No company is selected: the login''s bindings alone decide. '
                    ELSE format('The login''s own default (%s) applies instead. ', login_default)
                END
                || 'A session setting (SET, SET LOCAL, set_config, the connection''s options) stays '
                'on the server connection, which a connection pooler hands to its next client.',
                HINT = 'Run SELECT guard.pin_company(<company id>) inside each transaction, or bind the '
                'login to the company (guard tenant grant LOGIN COMPANY_ID) and set nothing; '
                'RESET booking_guard.company_id clears the value.';
    END IF;
    RETURN nullif(login_default, '')::bigint;
END;
$$;
