-- The privileges of the owner, application, reporting and reviewer roles (guard.role_grants),
-- granted by guard.apply_grants (grants/apply.sql, next). docs/security.md describes each role's
-- rights in prose. The rows are written whole each time the grants run: this file is the list.
-- A row removed here takes no privilege away (guard.apply_grants only adds): a migration
-- REVOKEs, as 0041_free_text_masked_for_reporting does.
DELETE FROM guard.role_grants;

-- The owner role: what its SECURITY DEFINER functions, detection, reconciliation and the jobs
-- read and correct on the application's tables.
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns) VALUES
('owner', 'TABLE', 'public.calls', '{SELECT,UPDATE}', NULL),
('owner', 'TABLE', 'public.appointments', '{SELECT,UPDATE}', NULL),
('owner', 'TABLE', 'public.companies', '{SELECT}', NULL),
-- a customer's company, for check cross_tenant_link (never a customer's name or phone)
('owner', 'TABLE', 'public.customers', '{SELECT}', '{id,company_id}');

-- The application: its own booking tables, the settings its triggers read, and the functions
-- it calls (directly, or through the triggers on calls and appointments).
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns) VALUES
('application', 'SCHEMA', 'guard', '{USAGE}', NULL),
('application', 'TABLE', 'public.companies', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.customers', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.services', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.calls', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'public.appointments', '{SELECT,INSERT,UPDATE,DELETE}', NULL),
('application', 'TABLE', 'guard.settings', '{SELECT}', NULL),
('application', 'TABLE', 'guard.rules', '{SELECT}', NULL),
-- The calls triggers run with the writer's rights: they record a contradicting write of the
-- booking flags for the commit-time check, and nothing else (no reading or removing one).
('application', 'TABLE', 'guard.flag_checks_at_commit', '{INSERT}', '{call_ids,written_by}'),
-- and queue a call written without an active appointment for detection at commit (nothing else)
('application', 'TABLE', 'guard.detection_queue', '{INSERT}', '{call_id}'),
('application', 'FUNCTION', 'guard.setting(text)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.current_company()', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.pin_company(bigint)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.may_pin_company(bigint)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.validate_booking(bigint, bigint, text)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION',
    'guard.record_validation(bigint, bigint, bigint, boolean, text, double precision)',
    '{EXECUTE}', NULL
),
('application', 'FUNCTION', 'guard.rollback_booking(bigint, text, jsonb)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.check_call(bigint)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.validate_call_end(bigint)', '{EXECUTE}', NULL),
-- the derived booking flags, read in place by the appointment triggers (invoker rights: they
-- update calls as the application would)
('application', 'FUNCTION', 'guard.call_flags_to_correct(bigint[], boolean)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.active_appointment_for_call(bigint, bigint)', '{EXECUTE}', NULL),
-- the lock and derivation the appointment update trigger calls when a row's change matters
('application', 'FUNCTION', 'guard.sync_call_flags(bigint[], bigint[])', '{EXECUTE}', NULL),
-- the same for the one call of a one-row cancel, soft delete or delete
('application', 'FUNCTION', 'guard.sync_one_call_flags(bigint, boolean)', '{EXECUTE}', NULL),
-- "active appointment", inlined into the statements that ask (an inlined function still needs
-- EXECUTE)
('application', 'FUNCTION', 'guard.is_active_appointment(text, anyelement)', '{EXECUTE}', NULL),
-- the application's time zone: its triggers stamp the application's columns in it
('application', 'FUNCTION', 'guard.app_time_zone()', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.app_time(timestamp without time zone, text)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.app_time(timestamp with time zone, text)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION', 'guard.to_app_time(timestamp with time zone, timestamp without time zone, text)',
    '{EXECUTE}', NULL
),
(
    'application', 'FUNCTION', 'guard.to_app_time(timestamp with time zone, timestamp with time zone, text)',
    '{EXECUTE}', NULL
),
-- the stored direction, inlined into the normaliser that runs with the writer's rights
('application', 'FUNCTION', 'guard.normalised_direction(text)', '{EXECUTE}', NULL),
-- the check of an application's flag write, inlined into the calls trigger (writer's rights)
(
    'application', 'FUNCTION',
    'guard.call_flags_contradict(boolean, text, timestamp with time zone, text, boolean, boolean)',
    '{EXECUTE}', NULL
),
-- the application's own migrations change a column type Booking Guard's views read (run as the
-- table's owner; the two SECURITY DEFINER steps check that)
(
    'application', 'FUNCTION', 'guard.alter_column_type(regclass, name, text, text)', '{EXECUTE}',
    NULL
),
('application', 'FUNCTION', 'guard.set_aside_column_views(regclass, name)', '{EXECUTE}', NULL),
('application', 'FUNCTION', 'guard.restore_column_views()', '{EXECUTE}', NULL),
-- the booking path any client follows (docs/booking-path.md): begin, then record; the record
-- writes the appointment with the application's own rights and masks the error it keeps
('application', 'FUNCTION', 'guard.begin_booking(bigint, bigint, double precision, text)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION',
    'guard.record_booking(text, text, timestamp with time zone, timestamp with time zone, jsonb,'
    || ' text, integer)',
    '{EXECUTE}', NULL
),
('application', 'FUNCTION', 'guard.booking_attempt_to_record(text)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION',
    'guard.record_calendar_booking(bigint, bigint, text, timestamp with time zone,'
    || ' timestamp with time zone, jsonb, text, text)',
    '{EXECUTE}', NULL
),
('application', 'FUNCTION', 'guard.mask_phone_numbers(text)', '{EXECUTE}', NULL),
-- the booking journal (guard.booking_attempts), written only through these
(
    'application', 'FUNCTION', 'guard.begin_booking_attempt(bigint, bigint, text)', '{EXECUTE}',
    NULL
),
(
    'application', 'FUNCTION', 'guard.complete_booking_attempt(text, bigint, text, integer)',
    '{EXECUTE}', NULL
),
('application', 'FUNCTION', 'guard.fail_booking_attempt(text, text, jsonb)', '{EXECUTE}', NULL),
(
    'application', 'FUNCTION', 'guard.unsettled_booking_attempts(integer, integer)', '{EXECUTE}',
    NULL
),
-- the calendar's reconciliation (guard.calendar.reconcile_calendar, `guard calendar reconcile`)
(
    'application', 'FUNCTION',
    'guard.reconcile_calendar_booking(bigint, text, text, timestamp with time zone,'
    || ' timestamp with time zone, bigint, text)',
    '{EXECUTE}', NULL
),
(
    'application', 'FUNCTION',
    'guard.queue_missing_in_calendar(bigint, timestamp with time zone, timestamp with time zone,'
    || ' timestamp with time zone, text[], integer)',
    '{EXECUTE}', NULL
),
(
    'application', 'FUNCTION',
    'guard.audit_calendar_restorations(bigint[], timestamp with time zone)', '{EXECUTE}', NULL
),
-- breaker history, written behind by the application's breakers (they may not write
-- guard.breaker_events or guard.breaker_state themselves)
('application', 'FUNCTION', 'guard.record_breaker_transitions(jsonb)', '{EXECUTE}', NULL),
-- a circuit evicted from Redis is restored from its last recorded state
('application', 'FUNCTION', 'guard.breaker_restore_state(text)', '{EXECUTE}', NULL),
-- and the application may read its circuits' state and history (`guard breaker list|show`):
-- circuits are services' health, no company's data
('application', 'TABLE', 'guard.breaker_state', '{SELECT}', NULL),
('application', 'TABLE', 'guard.breaker_events', '{SELECT}', NULL);

-- Reporting and reviewer: read-only, the BI views and, because most of them are
-- security_invoker, the tables behind them (row-level security limits both to the companies
-- bound to the role, guard.tenant_bindings); never the raw phone numbers. Every detection view
-- (guard.check_*) is granted too, by guard.apply_grants itself, so a new check needs no row.
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns)
SELECT
    k.kind,
    o.object_type,
    o.object_name,
    o.privileges,
    o.columns
FROM (VALUES ('reporting'), ('reviewer')) AS k (kind)
CROSS JOIN (
    VALUES
    ('SCHEMA', 'guard', '{USAGE}'::text[], NULL::text[]),
    ('TABLE', 'guard.daily_report_view', '{SELECT}', NULL),
    ('TABLE', 'guard.kpis', '{SELECT}', NULL),
    ('TABLE', 'guard.validation_latency_daily', '{SELECT}', NULL),
    ('TABLE', 'guard.job_status', '{SELECT}', NULL),
    -- the masking views: the free text the reporting role may not read raw, masked
    ('TABLE', 'guard.calls_report', '{SELECT}', NULL),
    ('TABLE', 'guard.alerts_report', '{SELECT}', NULL),
    ('TABLE', 'guard.review_items_report', '{SELECT}', NULL),
    ('TABLE', 'guard.correction_audit_report', '{SELECT}', NULL),
    ('TABLE', 'guard.daily_reports', '{SELECT}', NULL),
    ('TABLE', 'guard.validation_metrics', '{SELECT}', NULL),
    ('TABLE', 'guard.breaker_events', '{SELECT}', NULL),
    ('TABLE', 'guard.settings', '{SELECT}', NULL),
    ('TABLE', 'guard.jobs', '{SELECT}', NULL),
    ('TABLE', 'guard.job_runs', '{SELECT}', NULL),
    -- detection's own history (counts across companies, like the job runs)
    ('TABLE', 'guard.detection_runs', '{SELECT}', NULL),
    ('TABLE', 'guard.detection_passes', '{SELECT}', NULL),
    -- the registries: an alert's check_id leads to its check and rule
    ('TABLE', 'guard.rules', '{SELECT}', NULL),
    ('TABLE', 'guard.checks', '{SELECT}', NULL),
    -- read by the security_invoker view check_booking_outcome_unknown
    ('TABLE', 'guard.booking_attempts', '{SELECT}', NULL),
    -- tenants: guard.visible_companies reads the bindings with the reader's rights (a policy
    -- shows each role only its own)
    ('TABLE', 'guard.tenant_bindings', '{SELECT}', NULL),
    ('TABLE', 'public.companies', '{SELECT}', '{id,name}'),
    -- a customer's company, read by check cross_tenant_link (never a name or a phone number)
    ('TABLE', 'public.customers', '{SELECT}', '{id,company_id}'),
    (
        'TABLE', 'public.appointments', '{SELECT}',
        '{id,company_id,call_id,customer_id,service_id,calcom_v2_booking_id,source,status,'
        'starts_at,ends_at,created_at,updated_at,deleted_at}'
    ),
    ('FUNCTION', 'guard.current_company()', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.pin_company(bigint)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.may_pin_company(bigint)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.setting(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.mask_phone(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.mask_phone_numbers(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.mask_phone_numbers_json(jsonb)', '{EXECUTE}', NULL),
    -- `guard alerts show`, `guard review list`...: a large document printed as an excerpt
    ('FUNCTION', 'guard.json_excerpt(jsonb, text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.json_scalars(jsonb)', '{EXECUTE}', NULL),
    -- tenants: the row-level security policies and the masking views call it as the reader
    ('FUNCTION', 'guard.visible_companies()', '{EXECUTE}', NULL),
    -- the detection views call them
    ('FUNCTION', 'guard.is_active_appointment(text, anyelement)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.activity_against_usual(text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.activity_check(text, text, boolean)', '{EXECUTE}', NULL),
    -- the views read the application's times in its zone
    ('FUNCTION', 'guard.app_time_zone()', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.app_time(timestamp without time zone, text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.app_time(timestamp with time zone, text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.to_app_time(timestamp with time zone, timestamp without time zone, text)', '{EXECUTE}', NULL),
    ('FUNCTION', 'guard.to_app_time(timestamp with time zone, timestamp with time zone, text)', '{EXECUTE}', NULL)
) AS o (object_type, object_name, privileges, columns);

-- Free text: the reviewer reads it whole (it works the queue: calls the customer back, finds the
-- booking by its uid); the reporting role every other column, and the free text masked through
-- the masking views above.
INSERT INTO guard.role_grants (role_kind, object_type, object_name, privileges, columns) VALUES
(
    'reporting', 'TABLE', 'public.calls', '{SELECT}',
    '{id,company_id,retell_call_id,status,direction,customer_id,customer_link_status,'
    'customer_link_method,customer_link_confidence,customer_linked_at,session_outcome,'
    'appointment_made,appointment_link_status,appointment_linked_at,booking_id,'
    'booking_confirmed,booking_failed,requires_manual_processing,created_at,updated_at}'
),
(
    'reporting', 'TABLE', 'guard.alerts', '{SELECT}',
    '{id,fingerprint,check_id,company_id,entity_type,entity_id,severity,message,status,'
    'occurrences,first_seen_at,last_seen_at,resolved_at,resolution,delivered_at,observed_at,'
    'written_at}'
),
(
    'reporting', 'TABLE', 'guard.review_items', '{SELECT}',
    '{id,company_id,call_id,appointment_id,reason,priority,status,created_at,claimed_at,'
    'closed_at,false_positive,claimed_by_role,closed_by_role}'
),
(
    'reporting', 'TABLE', 'guard.correction_audit', '{SELECT}',
    '{id,rule_id,company_id,entity_type,entity_id,reason,actor,corrected_at}'
),
(
    'reviewer', 'TABLE', 'public.calls', '{SELECT}',
    '{id,company_id,retell_call_id,status,direction,customer_id,customer_link_status,'
    'customer_link_method,customer_link_confidence,customer_linked_at,session_outcome,'
    'appointment_made,appointment_link_status,appointment_linked_at,booking_id,'
    'booking_details,booking_confirmed,booking_failed,booking_failure_reason,'
    'requires_manual_processing,created_at,updated_at}'
),
('reviewer', 'TABLE', 'guard.alerts', '{SELECT}', NULL),
('reviewer', 'TABLE', 'guard.review_items', '{SELECT}', NULL),
('reviewer', 'TABLE', 'guard.correction_audit', '{SELECT}', NULL),
-- The reviewer works the review queue of its companies (review_claim and review_close run with
-- its rights, under row-level security). claimed_by and closed_by are its free-text labels; the
-- login is recorded in claimed_by_role and closed_by_role by a trigger, not granted.
(
    'reviewer', 'TABLE', 'guard.review_items', '{UPDATE}',
    '{status,claimed_by,claimed_at,closed_by,closed_at,note,false_positive}'
),
('reviewer', 'FUNCTION', 'guard.review_claim(text, integer)', '{EXECUTE}', NULL),
(
    'reviewer', 'FUNCTION', 'guard.review_close(bigint, text, text, text, boolean)', '{EXECUTE}',
    NULL
);
