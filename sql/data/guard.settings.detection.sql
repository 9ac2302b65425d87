-- Settings of detection.
INSERT INTO guard.settings AS s (key, value, value_type, description) VALUES
(
    'detection_window_minutes', '60', 'integer',
    'A detection pass looks at rows created this recently (plus every open alert).'
),
(
    'detection_statement_timeout_ms', '60000', 'integer',
    'A detection pass (the detect job, guard check) running longer fails with a statement timeout.'
),
(
    'detection_full_window_calls', '100000', 'integer',
    'A detection pass reads its whole window again while the window holds at most this many calls; '
    || 'above, each check reads the rows observed since its previous pass (less 5 minutes and the '
    || 'grace period) and a slice of the older ones, and probes the open alerts due for a refresh.'
),
(
    'detection_slice_calls', '50000', 'integer',
    'After a burst (a window of more than detection_full_window_calls calls), a detection pass reads '
    || 'at most this many calls of the older part of its window, besides the rows since its previous '
    || 'pass; the next pass goes on from where it stopped.'
),
(
    'detection_probe_every_alerts', '10000', 'integer',
    'A detection pass probes every open alert of a check that has at most this many, so that a fixed '
    || 'row resolves its alert at the next pass; above, each open alert is probed when its last_seen_at '
    || 'is due for a refresh (every 30 to 60 minutes).'
),
(
    'detection_queue_batch', '1000', 'integer',
    'At most this many queued calls are checked by one drain of the detection queue (a transaction).'
),
(
    'check_call_lock_timeout_ms', '5', 'integer',
    'check_call waits at most this long for alert rows another pass holds, then leaves them to it.'
),
(
    'check_call_budget_ms', '200', 'integer',
    'check_call starts a DBA''s own check only within this long of its start; one that alone '
    || 'takes longer is left out of check_call for check_call_over_budget_minutes.'
),
(
    'check_call_over_budget_minutes', '60', 'integer',
    'An own check that took longer than check_call_budget_ms is left out of check_call this long, '
    || 'then tried again.'
),
(
    'known_appointment_statuses', '"scheduled,confirmed,completed,no_show,cancelled"', 'text',
    'The appointment statuses the application writes (comma-separated); any other is detected.'
),
(
    'known_appointment_sources', '"retell_webhook,calcom_webhook,manual,import"', 'text',
    'The appointment sources the application writes (comma-separated); any other is detected.'
),
(
    'known_session_outcomes',
    to_jsonb(
        'appointment_booked,appointment_cancelled,creation_failed,no_booking,no_availability,'
        || 'information_only,caller_hung_up,callback'
    ),
    'text',
    'The call outcomes the application writes (comma-separated); any other is detected.'
)
ON CONFLICT (key) DO UPDATE SET
    description = excluded.description
WHERE s.description IS DISTINCT FROM excluded.description;
