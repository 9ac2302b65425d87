-- I2: a valid customer link. A customer means status linked with a time, a method and a
-- confidence; no customer means unlinked or anonymous (coalesce: a NULL status is not valid); a
-- confidence is a percentage. The CHECK guard_calls_customer_link_check on public.calls casts
-- the five link columns of a row to this domain, so the conditions live here (why a domain: see
-- guard.call_direction). Each constraint has the name the table's CHECK had before, so a
-- refused write names the rule it breaks.
-- Written out, not a call of guard.is_valid_customer_link: PostgreSQL keeps a domain's compiled
-- CHECK for the session, with an inlined function as it was then, and would not notice a
-- replaced function (tests/db/test_repeated_conditions.py proves the copies agree).
-- A rule changes the way migration 0029 made these: a new domain and a new CHECK on calls, added
-- NOT VALID and validated. Never ALTER DOMAIN ... ADD or DROP CONSTRAINT here: the CHECK on
-- calls would stay validated while old rows were never checked against the new rule.
CREATE DOMAIN guard.customer_link AS guard.customer_link_fields
CONSTRAINT guard_calls_customer_link_check CHECK (
    coalesce(
        CASE
            WHEN (value).customer_id IS NOT NULL
                THEN
                    (value).link_status = 'linked'
                    AND (value).linked_at IS NOT NULL
                    AND (value).link_method IS NOT NULL
                    AND (value).link_confidence IS NOT NULL
            ELSE (value).link_status IN ('unlinked', 'anonymous')
        END,
        FALSE
    )
)
CONSTRAINT guard_calls_link_confidence_range CHECK ((value).link_confidence BETWEEN 0 AND 100);
