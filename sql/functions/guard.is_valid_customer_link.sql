-- I2: a call's customer link is whole: a customer means status linked with a time, a method and
-- a confidence; no customer means unlinked or anonymous. NULL counts as not valid.
-- The condition of the domain guard.customer_link (its CHECK guard_calls_customer_link_check,
-- which the table's CHECK of that name casts to), for the statements that ask which rows break
-- it (guard.reconcile_call_batch). The domain and the WHEN clause of the legacy-row trigger
-- (guard.sync_legacy_triggers) keep it written out: a domain keeps its compiled CHECK for the
-- session, with an inlined function as it was then, and PostgreSQL compiles a trigger's WHEN
-- again for every statement that writes calls, where an inlined function would add to every
-- write; tests/db/test_repeated_conditions.py proves the three agree on every combination of the
-- five columns.
-- LANGUAGE sql, IMMUTABLE, one expression, no SET clause: the planner inlines it.
CREATE OR REPLACE FUNCTION guard.is_valid_customer_link(
    customer_id bigint,
    link_status text,
    linked_at timestamptz,
    link_method text,
    link_confidence numeric
)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN coalesce(
    CASE
        WHEN customer_id IS NOT NULL
            THEN
                link_status = 'linked'
                AND linked_at IS NOT NULL
                AND link_method IS NOT NULL
                AND link_confidence IS NOT NULL
        ELSE link_status IN ('unlinked', 'anonymous')
    END,
    FALSE
);
