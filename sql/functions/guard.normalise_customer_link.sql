-- I1, I2, BEFORE ROW on calls (guard_calls_normalise). Named for I2, its first duty; the
-- legacy-row triggers of I1 and I2 (guard.sync_legacy_triggers) run it too, so a rename must
-- re-point them first.
-- I1: a missing or blank direction becomes inbound, case is folded (guard.normalised_direction);
-- any other value is left for the CHECK to refuse.
-- I2: the customer link fields follow customer_id. A linked customer gets status linked and,
-- where the writer said nothing, linked_at now() and the default method and confidence; a newly
-- linked customer does not inherit the previous customer's link details. No customer: anonymous
-- for callers without a usable number (none, blank, or a withheld-number word), unlinked
-- otherwise. That test is one list lookup with few function calls: each function call in a
-- PL/pgSQL expression is set up again in every transaction (bench/instructions.py, "new call").
-- Few PL/pgSQL expressions for the same reason.
-- One function where there were two triggers: the direction's had a WHEN clause, compiled again
-- for every statement (docs/invariants.md, "Measured reasons for the shapes in sql/").
-- No SET clause, every function name qualified: see "Trigger functions without SET clauses" in
-- docs/security.md.
CREATE OR REPLACE FUNCTION guard.normalise_customer_link()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- The two everyday rows, already normal, end after two expressions instead of four: a call
    -- without a customer, unlinked, from a number in E.164 form ('+' first: no withheld-number
    -- word), and a new call linked with every detail given. What follows would leave either
    -- unchanged. About 14k instructions less for the unlinked new call and 5k for the linked
    -- one (bench/instructions.py, "new call"); any other row pays for one expression more, about
    -- 12k (an anonymous caller, an update that links a customer).
    IF NEW.customer_id IS NULL THEN
        IF
            NEW.customer_link_status = 'unlinked'
            AND pg_catalog.ascii(NEW.from_number) = 43
            AND NEW.customer_linked_at IS NULL
            AND NEW.customer_link_method IS NULL
            AND NEW.customer_link_confidence IS NULL
            AND NEW.direction IN ('inbound', 'outbound')
        THEN
            RETURN NEW;
        END IF;
    ELSIF
        TG_OP = 'INSERT'
        AND NEW.customer_link_status = 'linked'
        AND NEW.customer_linked_at IS NOT NULL
        AND NEW.customer_link_method IS NOT NULL
        AND NEW.customer_link_confidence IS NOT NULL
        AND NEW.direction IN ('inbound', 'outbound')
    THEN
        RETURN NEW;
    END IF;

    IF NEW.direction IS NULL OR NEW.direction NOT IN ('inbound', 'outbound') THEN
        NEW.direction := guard.normalised_direction(NEW.direction);
    END IF;

    IF NEW.customer_id IS NULL THEN
        NEW.customer_link_status := CASE
            WHEN NEW.customer_link_status = 'anonymous'
                OR pg_catalog.lower(pg_catalog.btrim(coalesce(NEW.from_number, '')))
                IN ('', 'anonymous', 'unknown', 'restricted', 'private')
                THEN 'anonymous'
            ELSE 'unlinked'
        END;
        -- One test, not three assignments: a new call without a customer (the everyday case)
        -- has none of the three, and each assignment is an expression compiled again in every
        -- transaction.
        IF
            NEW.customer_linked_at IS NOT NULL
            OR NEW.customer_link_method IS NOT NULL
            OR NEW.customer_link_confidence IS NOT NULL
        THEN
            NEW.customer_linked_at := NULL;
            NEW.customer_link_method := NULL;
            NEW.customer_link_confidence := NULL;
        END IF;
        RETURN NEW;
    END IF;

    IF TG_OP = 'UPDATE' AND NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
        IF NEW.customer_linked_at IS NOT DISTINCT FROM OLD.customer_linked_at THEN
            NEW.customer_linked_at := NULL;
        END IF;
        IF NEW.customer_link_method IS NOT DISTINCT FROM OLD.customer_link_method THEN
            NEW.customer_link_method := NULL;
        END IF;
        IF NEW.customer_link_confidence IS NOT DISTINCT FROM OLD.customer_link_confidence THEN
            NEW.customer_link_confidence := NULL;
        END IF;
    END IF;

    -- One test before four assignments: a new call that links its customer with every detail
    -- given (the everyday linked call) needs none of them, and each, with its function calls, is
    -- an expression compiled again in every transaction (about 25k instructions of the linked
    -- new call of bench/workload.py, counted with callgrind as bench/instructions.py counts).
    IF
        NEW.customer_link_status IS DISTINCT FROM 'linked'
        OR NEW.customer_linked_at IS NULL
        OR NEW.customer_link_method IS NULL
        OR NEW.customer_link_confidence IS NULL
    THEN
        NEW.customer_link_status := 'linked';
        NEW.customer_linked_at := coalesce(
            NEW.customer_linked_at,
            guard.to_app_time(pg_catalog.now(), NEW.customer_linked_at, guard.app_time_zone())
        );
        NEW.customer_link_method := coalesce(
            NEW.customer_link_method, guard.setting('default_customer_link_method') #>> '{}'
        );
        NEW.customer_link_confidence := coalesce(
            NEW.customer_link_confidence,
            (guard.setting('default_customer_link_confidence') #>> '{}')::numeric
        );
    END IF;
    RETURN NEW;
END;
$$;
