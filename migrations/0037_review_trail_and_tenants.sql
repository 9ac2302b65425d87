-- 0037_review_trail_and_tenants: what companies deleted before left behind is removed or closed,
-- as guard.forget_deleted_companies (a trigger on public.companies, from sql/) does from now on:
-- their tenant bindings go (a later company with the same id is not visible to the old logins),
-- their open alerts are resolved as superseded and their open review items dismissed. This runs
-- before the review trail trigger exists (sql/triggers/guard.review_items.
-- review_items_enforce_trail.sql), which refuses a close time a statement chooses.
-- Locks: ROW EXCLUSIVE on guard.tenant_bindings, guard.alerts, guard.review_items (the rows of
-- deleted companies, usually none).

DELETE FROM guard.tenant_bindings AS b
WHERE NOT EXISTS (
    SELECT FROM public.companies AS c
    WHERE c.id = b.company_id
);

UPDATE guard.alerts AS a
SET
    status = 'resolved',
    resolved_at = now(),
    resolution = 'superseded',
    details = a.details || jsonb_build_object('resolved_because', 'company deleted')
WHERE
    a.status = 'open'
    AND a.company_id IS NOT NULL
    AND NOT EXISTS (
        SELECT FROM public.companies AS c
        WHERE c.id = a.company_id
    );

UPDATE guard.review_items AS r
SET
    status = 'dismissed',
    closed_by = 'booking-guard',
    closed_at = now(),
    note = 'the company was deleted'
WHERE
    r.status IN ('open', 'claimed')
    AND r.company_id IS NOT NULL
    AND NOT EXISTS (
        SELECT FROM public.companies AS c
        WHERE c.id = r.company_id
    );
