-- guard.forget_deleted_companies, the trigger of a company's deletion: deleting a company dismisses
-- its review items that are still open AND those a reviewer has claimed (nobody can finish the work
-- of a company that no longer exists); its closed items and resolved alerts are history and stay as
-- they were.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (901, 'deleted'), (902, 'kept');
INSERT INTO guard.review_items (company_id, reason, note)
VALUES (901, 'other', 'open'), (901, 'other', 'claimed'), (901, 'other', 'resolved'),
(902, 'other', 'claimed elsewhere');
UPDATE guard.review_items SET status = 'claimed', claimed_by = 'ann'
WHERE note IN ('claimed', 'resolved', 'claimed elsewhere');
UPDATE guard.review_items SET status = 'resolved', closed_by = 'ann'
WHERE note = 'resolved';
INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id, severity, message, status, resolved_at, resolution)
VALUES ('gone:company:901', 'gone', 901, 'company', 901, 'high', 'x', 'resolved', now() - interval '1 day', 'fixed');

DELETE FROM companies
WHERE id = 901;

SELECT results_eq(
    $$SELECT reason || ':' || status, closed_by, coalesce(note, '-') FROM guard.review_items
      WHERE company_id = 901 ORDER BY id$$,
    $$VALUES
        ('other:dismissed', 'booking-guard', 'the company was deleted'),
        ('other:dismissed', 'booking-guard', 'the company was deleted'),
        ('other:resolved', 'ann', 'resolved')$$,
    'a deleted company''s open and claimed items are dismissed, its resolved one kept'
);
SELECT results_eq(
    $$SELECT status FROM guard.review_items WHERE company_id = 902$$,
    $$VALUES ('claimed')$$,
    'another company''s claimed item is left alone'
);
SELECT results_eq(
    $$SELECT status, resolution, resolved_at < now(), details ? 'resolved_because'
      FROM guard.alerts WHERE fingerprint = 'gone:company:901'$$,
    $$VALUES ('resolved', 'fixed', TRUE, FALSE)$$,
    'a deleted company''s resolved alert keeps its resolution'
);

SELECT * FROM finish();
ROLLBACK;
