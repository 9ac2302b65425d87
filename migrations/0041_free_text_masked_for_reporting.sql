-- 0041_free_text_masked_for_reporting: the reporting role no longer reads free text raw. The
-- application's failure reasons and booking details (public.calls), and what detection,
-- corrections and reviewers copy of them (alert and review-item details, the audit's before and
-- after, the reviewers' note and labels), are readable by reporting only through views that mask
-- phone numbers (guard.calls_report, guard.alerts_report, guard.review_items_report,
-- guard.correction_audit_report, the recent-failure check). Every other column stays readable:
-- guard.role_grants lists them and the grants after the migrations give them.
-- Locks: none held long (privileges only).

-- The table-level SELECT that reporting held on these tables, and its SELECT of the two free
-- text columns of public.calls, go.
DO $$
BEGIN
    EXECUTE format(
        'REVOKE SELECT ON TABLE guard.alerts, guard.review_items, guard.correction_audit FROM %I',
        guard.role('reporting')
    );
    EXECUTE format(
        'REVOKE SELECT (booking_details, booking_failure_reason) ON TABLE public.calls FROM %I',
        guard.role('reporting')
    );
END;
$$;
