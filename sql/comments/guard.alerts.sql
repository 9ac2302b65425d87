-- What BI tools show for guard.alerts (docs/bi-columns.md is generated from these comments).
COMMENT ON TABLE guard.alerts IS
'one row per alert: a check found a problem with one call, appointment, booking attempt, company or job (written by detection, the booking path, reconcile or the job runner); open until fixed';

COMMENT ON COLUMN guard.alerts.id IS 'the alert (`guard alerts show ID`)';
COMMENT ON COLUMN guard.alerts.fingerprint IS 'what the alert is about, `check:entity_type:entity_id` (`check:job:<job>` for a job); at most one open alert per fingerprint';
COMMENT ON COLUMN guard.alerts.check_id IS 'the check that found it (`guard.checks.id`); its rule is `guard.checks.rule_id`';
COMMENT ON COLUMN guard.alerts.company_id IS 'the company the problem belongs to; NULL for a job alert (no company, so no tenant login sees it)';
COMMENT ON COLUMN guard.alerts.entity_type IS 'what the problem is about: `call`, `appointment`, `booking_attempt`, `company` (failure-rate anomaly, activity monitors, flags corrected at commit) or `job`';
COMMENT ON COLUMN guard.alerts.entity_id IS 'the id of that call, appointment, booking attempt or company; NULL for a job alert (the job is named in `details`)';
COMMENT ON COLUMN guard.alerts.severity IS '`critical`, `high`, `medium` or `low`';
COMMENT ON COLUMN guard.alerts.message IS 'what is wrong, in words: the check''s description, or the text of the booking path, reconcile or job runner that raised it';
COMMENT ON COLUMN guard.alerts.details IS 'jsonb: the facts behind it (flags, rates, idempotency key, a failed booking''s context, the `call_id` of an appointment or attempt); phone numbers masked in `guard.alerts_report`';
COMMENT ON COLUMN guard.alerts.status IS '`open` (still a problem) or `resolved` (see `resolution`)';
COMMENT ON COLUMN guard.alerts.occurrences IS 'how many times it was found or raised while open, as written: 1 when opened, +1 when a detection pass or check_call finds it again once its `last_seen_at` is 30 to 60 minutes old (a sighting sooner is counted by the pass, not written), +1 for each repeat of a job''s or check''s own alert';
COMMENT ON COLUMN guard.alerts.first_seen_at IS 'when it was first found (opened)';
COMMENT ON COLUMN guard.alerts.last_seen_at IS 'when it was last found, as written: moved by a pass that finds it again once it is 30 to 60 minutes old, so an open alert is at most an hour and a pass behind; found again after a longer silence than `alert_throttle_seconds` (300 s) past the next detection pass (the detect job''s interval, 300 s), counted from this and from its check''s last pass, a new alert is opened instead';
COMMENT ON COLUMN guard.alerts.resolved_at IS 'when it was resolved; NULL while open (an alert superseded by a later repeat: the time it was last seen)';
COMMENT ON COLUMN guard.alerts.resolution IS '`fixed` (no longer found, job succeeded, booking settled), `superseded` (a new alert replaced it, or its company or job was deleted), `manual` (settled in review); NULL while open';
COMMENT ON COLUMN guard.alerts.delivered_at IS 'when `guard watch` had delivered it on every channel (or an operator skipped it); NULL: not yet delivered everywhere';
COMMENT ON COLUMN guard.alerts.observed_at IS 'when the offending row was observed (the check''s `observed_at`: the call''s creation, a failed booking attempt''s end); the detection latency counts from `written_at` where it is known. NULL for alerts not opened by detection (jobs, reconcile, the booking path) and for those `guard check --all` opened over the history';
COMMENT ON COLUMN guard.alerts.written_at IS 'the last write of the offending row when its alert opened (a call''s or an appointment''s latest `created_at`/`updated_at`, in the application''s zone): the commit that made it bad, or a later one. `first_seen_at - coalesce(written_at, observed_at)` is the detection latency (guard.kpis). NULL where `observed_at` is, and for rows that are neither calls nor appointments';
