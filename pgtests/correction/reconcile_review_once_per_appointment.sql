-- guard.reconcile's two review steps queue each appointment once: an orphan or a cross-tenant
-- link whose own item is open or claimed is not queued again, one found later is queued although
-- another appointment's item is open, and one whose item a person closed while the problem is
-- still there is queued again.
BEGIN;
SELECT plan(6);

INSERT INTO companies (id, name) VALUES (1131, 'books'), (1132, 'other');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (id, company_id, retell_call_id, direction, customer_link_status, created_at, updated_at)
SELECT
    g,
    1132,
    'x' || g,
    'inbound',
    'unlinked',
    now() - interval '1 hour',
    now() - interval '1 hour'
FROM generate_series(11311, 11312) AS g;
-- 11301: an orphan no call carries the uid of; 11311: linked to another company's call.
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at)
VALUES
(11301, 1131, NULL, 'retell_webhook', 'none-11301', now() - interval '1 hour'),
(11311, 1131, 11311, 'retell_webhook', 'x-11311', now() - interval '1 hour');
SET LOCAL session_replication_role = origin;

SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{review_orphan_appointment,review_cross_tenant}')$$,
    $$VALUES ('review_orphan_appointment', 1), ('review_cross_tenant', 1)$$,
    'the orphan and the cross-tenant link are queued'
);

-- Found later: a second orphan and a second cross-tenant link. The first items are claimed.
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann';
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at)
VALUES
(11302, 1131, NULL, 'retell_webhook', 'none-11302', now() - interval '1 hour'),
(11312, 1131, 11312, 'retell_webhook', 'x-11312', now() - interval '1 hour');
SET LOCAL session_replication_role = origin;
SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{review_orphan_appointment,review_cross_tenant}')$$,
    $$VALUES ('review_orphan_appointment', 1), ('review_cross_tenant', 1)$$,
    'each appointment found later is queued, though another''s item is claimed'
);
SELECT results_eq(
    $$SELECT appointment_id, status FROM guard.review_items ORDER BY appointment_id$$,
    $$VALUES (11301::bigint, 'claimed'), (11302::bigint, 'open'),
             (11311::bigint, 'claimed'), (11312::bigint, 'open')$$,
    'one item per appointment: the claimed ones were not queued twice'
);
SELECT results_eq(
    $$SELECT sum(affected)::int FROM guard.reconcile()$$,
    ARRAY[0],
    'with every item open or claimed, nothing is queued'
);

-- A person closes the first two items, but the orphan and the link are still there.
UPDATE guard.review_items SET status = 'resolved', closed_by = 'ann', note = 'looked at it'
WHERE appointment_id IN (11301, 11311);
SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{review_orphan_appointment,review_cross_tenant}')$$,
    $$VALUES ('review_orphan_appointment', 1), ('review_cross_tenant', 1)$$,
    'an appointment whose item was closed while its problem stays is queued again'
);
SELECT results_eq(
    $$SELECT appointment_id, status FROM guard.review_items
      WHERE appointment_id IN (11301, 11311) ORDER BY appointment_id, id$$,
    $$VALUES (11301::bigint, 'resolved'), (11301::bigint, 'open'),
             (11311::bigint, 'resolved'), (11311::bigint, 'open')$$,
    'the closed item is kept as history beside the new one'
);

SELECT * FROM finish();
ROLLBACK;
