-- 0069_report_sections: what the daily report was missing against the incident's request: the
-- day's appointments, the share of the day's problems that were resolved, the detection latency,
-- and, for each rule, its likely cause and what a person does about it, so that top issues and
-- action items say more than a count. The report's definitions are applied from sql/.
-- Locks: ACCESS EXCLUSIVE on guard.daily_reports and guard.rules for milliseconds (columns with
-- a constant default or none: catalog changes, no rewrite); ROW EXCLUSIVE on guard.rules (rows).
ALTER TABLE guard.daily_reports
ADD COLUMN total_appointments integer NOT NULL DEFAULT 0,
ADD COLUMN recovery_rate_pct numeric(6, 2),
ADD COLUMN detection_latency_p95_seconds numeric(12, 2),
ADD COLUMN action_items jsonb NOT NULL DEFAULT '[]';

ALTER TABLE guard.rules
ADD COLUMN likely_cause text,
ADD COLUMN action text;

UPDATE guard.rules AS r
SET likely_cause = v.likely_cause, action = v.action
FROM (
    VALUES
    (
        'I1_call_direction',
        'The voice platform sent no direction, or a writer bypassed the normaliser (a legacy load, '
        || 'replication).',
        'None for the row: reconcile fills inbound. If it recurs, check how the webhook maps the '
        || 'direction.'
    ),
    (
        'I2_customer_link',
        'A customer link written in part (a customer without status, time or method).',
        'None for the row: it is normalised on write. If it recurs, check the application''s '
        || 'customer-linking code.'
    ),
    (
        'I3_appointment_flags',
        'The application wrote booking flags that contradict the appointments (a stale read, a '
        || 'retry that overwrote them).',
        'None for the row: corrected at commit and audited. Find the writer in '
        || 'guard.correction_audit.'
    ),
    (
        'I4_booked_outcome',
        'The caller was told the booking was made but the calendar holds none (a calendar '
        || 'timeout, a lost answer or webhook).',
        'Reconcile rolls the call back after the grace period and queues it: call the customer '
        || 'back (guard review list).'
    ),
    (
        'I5_tenant_link',
        'An appointment linked to another company''s call (a wrong id from an import or a bug).',
        'Refused on write. Fix an existing link by hand (guard review list).'
    ),
    (
        'I6_voice_appointment_call',
        'The calendar''s webhook recorded a voice-agent appointment without its call.',
        'Reconcile links it by booking uid when exactly one call matches; otherwise decide in '
        || 'guard review list.'
    ),
    (
        'I7_booking_failures',
        'The calendar failed or refused bookings (down, slow, no slot, a booking that did not '
        || 'validate).',
        'Check the calendar and its circuit (guard breaker list); call back the customers queued '
        || 'in guard review list.'
    ),
    (
        'I8_known_values',
        'The application wrote a status, source or outcome outside its known set (a typo such as '
        || 'canceled, a new value).',
        'Fix the value, or add it to its known_* setting if it is legitimate (docs/invariants.md).'
    ),
    (
        'job_health',
        'A scheduled Booking Guard job failed or did not run (pg_cron stopped, a lock, a timeout).',
        'guard jobs status, then docs/runbooks.md.'
    )
) AS v (id, likely_cause, action)
WHERE r.id = v.id;
