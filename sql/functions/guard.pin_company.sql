-- Narrow this transaction to one company: what a single-company application connection or a
-- dashboard query runs first in each transaction (SELECT guard.pin_company(42)). The pin ends
-- with the transaction, so behind a transaction pooler it never reaches another client; it is
-- marked with this server process and this transaction's start, which guard.current_company
-- checks (a value copied into a session setting is refused there). It narrows and never widens:
-- a company not bound to the role shows nothing (guard.visible_companies), and the SECURITY
-- DEFINER functions refuse other companies' rows (guard.assert_tenant). Returns the company.
-- No SET clause: a function with one would take the settings it makes back when it returns.
-- Every name is qualified instead (pg_catalog is searched first whatever the caller's path).
-- In autocommit mode a statement is its own transaction: pin inside BEGIN ... COMMIT.
-- A company the caller may not pin (guard.may_pin_company) is refused: pinned, it would show
-- nothing, and a typo would look like a quiet day.
CREATE OR REPLACE FUNCTION guard.pin_company(company bigint)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    IF company IS NULL THEN
        RAISE EXCEPTION 'guard.pin_company needs a company id, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT guard.may_pin_company(company) THEN
        RAISE EXCEPTION 'company % does not exist or is not bound to role "%"', company, current_user
            USING
                ERRCODE = 'no_data_found',
                HINT = 'guard tenant list shows the companies bound to each role; guard tenant grant '
                'LOGIN COMPANY_ID binds one.';
    END IF;
    PERFORM
        pg_catalog.set_config('booking_guard.company_id', company::text, TRUE),
        pg_catalog.set_config(
            'booking_guard.company_pin',
            pg_catalog.pg_backend_pid()::text || '/'
            || extract(EPOCH FROM pg_catalog.transaction_timestamp())::text,
            TRUE
        );
    RETURN company;
END;
$$;
