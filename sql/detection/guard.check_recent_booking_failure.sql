-- I7, check recent_booking_failure of rule I7_booking_failures: a booking that failed within the
-- failure window (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
-- The failure reason is free text the application writes: phone numbers in it are masked.
-- The window's start is a MATERIALIZED CTE so that calls is joined on a plain column: under the
-- row-level security of a reporting login, a condition that holds a sub-select (or computes with
-- another table's columns) is not leakproof, may not be pushed below the tenant policy into the
-- index scan on created_at, and calls was read whole (bench/tenant_rls.py).
CREATE VIEW guard.check_recent_booking_failure WITH (security_invoker = TRUE) AS
WITH failure_window AS MATERIALIZED (
    SELECT now() - make_interval(mins => (s.value #>> '{}')::integer) AS since
    FROM guard.settings AS s
    WHERE s.key = 'failure_window_minutes'
)

SELECT
    'recent_booking_failure'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    c.created_at AS observed_at,
    jsonb_build_object(
        'session_outcome', c.session_outcome,
        'booking_failure_reason', guard.mask_phone_numbers(c.booking_failure_reason),
        'requires_manual_processing', c.requires_manual_processing
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM failure_window AS w
INNER JOIN public.calls AS c ON w.since <= c.created_at
WHERE c.session_outcome = 'creation_failed' OR c.booking_failed;
