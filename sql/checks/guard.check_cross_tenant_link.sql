-- I5, check cross_tenant_link of rule I5_tenant_link: an appointment linked to a call or a
-- customer of another company, and a call linked to another company's customer. The composite
-- foreign keys refuse new ones; this finds those an adopted database already had.
CREATE OR REPLACE VIEW guard.check_cross_tenant_link WITH (security_invoker = TRUE) AS
SELECT
    'cross_tenant_link'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'critical'::text AS severity,
    guard.app_time(a.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_strip_nulls(jsonb_build_object(
        'call_company_id', CASE WHEN c.company_id <> a.company_id THEN c.company_id END,
        'customer_company_id', CASE WHEN cu.company_id <> a.company_id THEN cu.company_id END
    )) AS detail,
    'I5_tenant_link'::text AS rule_id
FROM public.appointments AS a
LEFT JOIN public.calls AS c ON a.call_id = c.id
LEFT JOIN public.customers AS cu ON a.customer_id = cu.id
WHERE c.company_id <> a.company_id OR cu.company_id <> a.company_id
UNION ALL
SELECT
    'cross_tenant_link'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'critical'::text AS severity,
    guard.app_time(c.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object('customer_company_id', cu.company_id) AS detail,
    'I5_tenant_link'::text AS rule_id
FROM public.calls AS c
INNER JOIN public.customers AS cu ON c.customer_id = cu.id
WHERE cu.company_id <> c.company_id;
