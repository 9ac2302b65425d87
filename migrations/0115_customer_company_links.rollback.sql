-- Rollback of 0115_customer_company_links.

ALTER TABLE public.appointments DROP CONSTRAINT IF EXISTS guard_appointments_customer_company_fkey;

ALTER TABLE public.calls DROP CONSTRAINT IF EXISTS guard_calls_customer_company_fkey;

-- the rule and check as they were before this migration (sql/data writes the new ones)
UPDATE guard.rules
SET
    description = 'An appointment and its call belong to the same company.',
    constraint_names = '{guard_appointments_call_company_fkey,guard_appointments_company_required}'
WHERE id = 'I5_tenant_link';
UPDATE guard.checks
SET description = 'An appointment is linked to a call of another company.'
WHERE id = 'cross_tenant_link';
