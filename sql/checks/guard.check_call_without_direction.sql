-- I1, check call_without_direction of rule I1_call_direction: a call without a valid direction
-- (legacy rows only: new writes are normalised and checked).
CREATE OR REPLACE VIEW guard.check_call_without_direction WITH (security_invoker = TRUE) AS
SELECT
    'call_without_direction'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'medium'::text AS severity,
    guard.app_time(c.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object('direction', c.direction) AS detail,
    'I1_call_direction'::text AS rule_id
FROM public.calls AS c
-- Written as IS NULL OR NOT IN, which the column's statistics estimate (NOT coalesce(...) was
-- guessed at half the table, and so many rows through a Gather kept `guard check --all`'s read,
-- whose array_agg cannot aggregate in the workers before PostgreSQL 16, on one process).
WHERE c.direction IS NULL OR c.direction NOT IN ('inbound', 'outbound');
