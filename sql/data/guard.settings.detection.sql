-- Settings of detection.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'detection_window_minutes', '60', 'integer',
    'A detection pass looks at rows created this recently (plus every open alert).'
),
(
    'detection_statement_timeout_ms', '60000', 'integer',
    'A detection pass (the detect job, guard check) running longer fails with a statement timeout.'
),
(
    'check_call_lock_timeout_ms', '5', 'integer',
    'check_call waits at most this long for alert rows another pass holds, then leaves them to it.'
);
