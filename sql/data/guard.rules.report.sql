-- Each rule's likely cause and the action a person takes, shown with the daily report's top
-- issues and action items.
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
        'I10_double_booking',
        'Two writers booked one call, or one customer, without a lock (a retry that did not see '
        || 'the first booking, two agents at once).',
        'Cancel the repeat in the calendar and in appointments; lock the call (SELECT ... FOR '
        || 'UPDATE) before booking, or add the constraints of docs/invariants.md.'
    ),
    (
        'job_health',
        'A scheduled Booking Guard job failed or did not run (pg_cron stopped, a lock, a timeout).',
        'guard jobs status, then docs/runbooks.md.'
    )
) AS v (id, likely_cause, action)
WHERE
    r.id = v.id
    AND (r.likely_cause, r.action) IS DISTINCT FROM (v.likely_cause, v.action);
