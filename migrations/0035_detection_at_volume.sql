-- 0035_detection_at_volume: the settings of detection at volume. A detection pass (the detect
-- job, guard check) runs under detection_statement_timeout_ms and fails clearly instead of
-- running for minutes; check_call waits at most check_call_lock_timeout_ms on alert rows
-- another pass holds. (guard.run_detection, guard.run_job and guard.recheck_alerts_between read
-- them: sql/functions/.)
-- Locks: ROW EXCLUSIVE on guard.settings (two new rows).

INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'detection_statement_timeout_ms', '60000', 'integer',
    'A detection pass (the detect job, guard check) running longer fails with a statement timeout.'
),
(
    'check_call_lock_timeout_ms', '5', 'integer',
    'check_call waits at most this long for alert rows another pass holds, then leaves them to it.'
);
