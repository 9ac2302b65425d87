-- I5, check cross_tenant_link of rule I5_tenant_link: an appointment linked to a call of another
-- company. The composite foreign key refuses new ones; this finds those an adopted database already
-- had.
CREATE OR REPLACE VIEW guard.check_cross_tenant_link WITH (security_invoker = TRUE) AS
SELECT
    'cross_tenant_link'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'critical'::text AS severity,
    a.created_at AS observed_at,
    jsonb_build_object('call_company_id', c.company_id) AS detail,
    'I5_tenant_link'::text AS rule_id
FROM public.appointments AS a
INNER JOIN public.calls AS c ON a.call_id = c.id
WHERE c.company_id <> a.company_id;
