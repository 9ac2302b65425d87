-- What BI tools show for each table and view the reporting role reads, one section each
-- (docs/bi-columns.md is generated from these comments).
-- The check views' columns are written once in guard.check_views.sql; the masked views and
-- guard.daily_report_view copy their table's columns' comments in guard.report_views.sql.

-- guard.rules
COMMENT ON TABLE guard.rules IS
'one row per invariant (`I1` … `I8`) plus the operational rule `job_health`: what it requires, how serious a breach is, how far it is enforced; shipped by migrations, tuned by a DBA';

COMMENT ON COLUMN guard.rules.id IS 'the rule''s id, `I1_call_direction` … `I8_known_values` or `job_health`; what checks, corrections, reports and metrics name (an alert names its check)';
COMMENT ON COLUMN guard.rules.invariant IS 'the invariant''s number, `I1` … `I8` (docs/invariants.md); NULL for `job_health` and for a DBA''s own rule without one';
COMMENT ON COLUMN guard.rules.severity IS 'how serious a breach is: `critical`, `high`, `medium`, `low` (shown in the daily report''s `top_issues`)';
COMMENT ON COLUMN guard.rules.description IS 'what the rule requires, in one sentence';
COMMENT ON COLUMN guard.rules.remedy IS 'what is done about a breach: `auto_fix` (corrected automatically), `review` (queued for a person), `report` (reported only)';
COMMENT ON COLUMN guard.rules.mode IS 'what a bad write meets: `correct` (corrected and audited) or `reject` (refused with an error); a DBA may switch it for `I3_appointment_flags`, for every company or for some (`guard rules mode`: a company''s override wins)';
COMMENT ON COLUMN guard.rules.stage IS 'how far the rule is enforced: `observe` (detected only), `correct` (new writes corrected, a constraint still `NOT VALID`), `enforce` (every constraint validated); a company may have its own for `I3_appointment_flags` and `I4_booked_outcome` (`guard rules stage`)';
COMMENT ON COLUMN guard.rules.constraint_names IS 'the constraints on `calls` and `appointments` that enforce the rule (`guard_calls_direction_check`, ...); `{}` when none';
COMMENT ON COLUMN guard.rules.enabled IS '`false`: a DBA switched it off; only `I3_appointment_flags` reads it (contradicting flag writes then stand); detection is switched per check (`guard.checks.enabled`)';
COMMENT ON COLUMN guard.rules.updated_at IS 'when the row last changed (a DBA''s tuning, or `guard db validate` recording the stage)';
COMMENT ON COLUMN guard.rules.likely_cause IS 'what usually causes a breach, in one sentence (shown with the daily report''s top issues); NULL for a rule a DBA added without one';
COMMENT ON COLUMN guard.rules.action IS 'what a person does about a breach (the daily report''s top issues and action items); NULL for a rule a DBA added without one';
COMMENT ON COLUMN guard.rules.company_overrides IS 'how many companies have their own stage or mode for the rule (`guard rules show` lists them); 0: the rule''s own stage and mode hold for every company';

-- guard.checks
COMMENT ON TABLE guard.checks IS
'one row per way a breach of a rule is found: a detection view, or code that raises the alert itself (a rolled-back booking, a failed or missed job); shipped by migrations or registered by a DBA';

COMMENT ON COLUMN guard.checks.id IS 'the check''s id (`call_without_direction`, `booking_rolled_back`, `job_failed`, ...); what alerts name (`guard.alerts.check_id`, the Alertmanager `alertname`)';
COMMENT ON COLUMN guard.checks.rule_id IS 'the rule whose breach it finds (`guard.rules.id`: `I1_call_direction` … `I8_known_values`, or `job_health`)';
COMMENT ON COLUMN guard.checks.severity IS 'the severity of its alerts: `critical`, `high`, `medium`, `low`';
COMMENT ON COLUMN guard.checks.description IS 'what it finds, in one sentence; the message of the alerts detection opens for it';
COMMENT ON COLUMN guard.checks.remedy IS 'what is done about what it finds: `auto_fix` (corrected automatically), `review` (queued for a person), `report` (reported only)';
COMMENT ON COLUMN guard.checks.check_view IS 'its detection view in schema `guard` (`check_call_without_direction`, ...); NULL: raised by the code that sees the breach (`booking_rolled_back`, `job_failed`, ...)';
COMMENT ON COLUMN guard.checks.enabled IS '`false`: switched off by a DBA: detection stops running it (its open alerts stay), a job check raises nothing; `booking_rolled_back` and `flags_corrected_on_write` always raise';
COMMENT ON COLUMN guard.checks.updated_at IS 'when the row last changed';
COMMENT ON COLUMN guard.checks.warn_above IS 'a pass whose measure (see `threshold_unit`) is above this warns: one alert of check `check_threshold`, severity medium; NULL: no warn threshold';
COMMENT ON COLUMN guard.checks.error_above IS 'a pass whose measure is above this fails: the same alert at severity high; NULL: no error threshold';
COMMENT ON COLUMN guard.checks.sweep IS '`true`: the hourly `sweep` job also reads the check''s whole view, not only the detection window: for values an update of an old row can make bad (`unknown_value`)';
COMMENT ON COLUMN guard.checks.threshold_unit IS 'what the thresholds measure: `count` (offending rows in the pass) or `rate_pct` (offending rows observed in the pass''s window per 100 calls created in it)';

-- guard.settings
COMMENT ON TABLE guard.settings IS
'one row per tunable setting (windows, thresholds, retention, KPI targets, known values) that detection, the jobs, the KPIs and the triggers read; shipped by migrations, tuned by a DBA';

COMMENT ON COLUMN guard.settings.key IS 'the setting''s name (`grace_period_seconds`, `retention_alerts_days`, `target_*`, `known_*`, ...); a suffix names its unit: `_seconds`, `_ms`, `_minutes`, `_days`, `_pct` (percent)';
COMMENT ON COLUMN guard.settings.value IS 'jsonb: the value, a number, `true`/`false` or a string (`"phone_match"`; the `known_*` sets comma-separated); `value #>> ''{}''` reads it as text';
COMMENT ON COLUMN guard.settings.value_type IS 'what `value` holds: `integer`, `number`, `boolean` or `text`';
COMMENT ON COLUMN guard.settings.description IS 'what the setting controls, in one sentence';
COMMENT ON COLUMN guard.settings.updated_at IS 'when the row last changed (a DBA''s tuning, or an upgrade)';

-- guard.jobs
COMMENT ON TABLE guard.jobs IS
'one row per scheduled Booking Guard job: what it runs and when (UTC); shipped by migrations, changed by a DBA; pg_cron or `guard jobs run` runs the enabled ones';

COMMENT ON COLUMN guard.jobs.name IS 'the job''s name (shipped: `detect`, `reconcile`, `review_sweep`, `sweep`, `daily_report`, `retention`); what `guard.job_runs.job_name` and job alerts name (pg_cron job `guard_<name>`)';
COMMENT ON COLUMN guard.jobs.schedule IS 'when it runs: a cron expression in UTC (`*/5 * * * *`), followed by pg_cron and `guard jobs run`';
COMMENT ON COLUMN guard.jobs.interval_seconds IS 'seconds between two runs (≥ 60): next due is last start + this; no success within twice this makes it overdue (a `job_missed` alert)';
COMMENT ON COLUMN guard.jobs.command IS 'the SQL it runs (`SELECT count(*) FROM guard.detect()`, ...), fixed text run by `guard.run_job`';
COMMENT ON COLUMN guard.jobs.description IS 'what the job does, in one sentence';
COMMENT ON COLUMN guard.jobs.enabled IS '`false`: switched off by a DBA: not scheduled by pg_cron, skipped by `guard jobs run` (unless named with `--job`), never overdue';
COMMENT ON COLUMN guard.jobs.updated_at IS 'when the row last changed; a job without a success since then counts as overdue from this time';

-- guard.job_runs
COMMENT ON TABLE guard.job_runs IS
'one row per finished run of a scheduled job, succeeded or failed: the jobs'' heartbeats, written by `guard.run_job`; kept 7 days (`retention_job_runs_days`), each job''s newest run and success always';

COMMENT ON COLUMN guard.job_runs.id IS 'the run''s id, increasing';
COMMENT ON COLUMN guard.job_runs.job_name IS 'the job (`guard.jobs.name`: `detect`, `reconcile`, `review_sweep`, `sweep`, `daily_report`, `retention`)';
COMMENT ON COLUMN guard.job_runs.started_at IS 'when the run started';
COMMENT ON COLUMN guard.job_runs.finished_at IS 'when the run finished';
COMMENT ON COLUMN guard.job_runs.status IS '`succeeded`, or `failed` (its work rolled back, a `job_failed` alert opened)';
COMMENT ON COLUMN guard.job_runs.error IS 'the error message of a failed run (a timeout says so); NULL when it succeeded';
COMMENT ON COLUMN guard.job_runs.sqlstate IS 'the SQLSTATE of a failed run''s error (`57014`: statement timeout); NULL when it succeeded';
COMMENT ON COLUMN guard.job_runs.duration_ms IS 'how long the run took, ms';
COMMENT ON COLUMN guard.job_runs.runner IS 'who ran it: the session''s application name (`pg_cron` under pg_cron, `guard jobs run` for the external runner); empty when none was set';

-- guard.tenant_bindings
COMMENT ON TABLE guard.tenant_bindings IS
'one row per database role and company it may see: what row-level security reads; written by the owner role (a DBA: `guard tenant grant`, `guard tenant revoke`); a reader sees only its own roles'' rows';

COMMENT ON COLUMN guard.tenant_bindings.role_id IS 'the role bound: a login, or a group role whose members see the company too; shown by name (a number: the role was dropped and the binding reaches nobody)';
COMMENT ON COLUMN guard.tenant_bindings.company_id IS 'the company (`public.companies.id`) whose rows the role may see; the binding goes when the company is deleted';
COMMENT ON COLUMN guard.tenant_bindings.granted_by IS 'the login that made the binding';
COMMENT ON COLUMN guard.tenant_bindings.granted_at IS 'when the binding was made';

-- guard.detection_runs
COMMENT ON TABLE guard.detection_runs IS
'one row per check per windowed detection pass (the detect job, `guard check`): time taken, rows found, alerts opened and resolved; written by detection, kept 30 days (`retention_detection_runs_days`)';

COMMENT ON COLUMN guard.detection_runs.id IS 'the row''s id, increasing';
COMMENT ON COLUMN guard.detection_runs.pass_started_at IS 'when the pass started; the same for every check of one pass (`guard.detection_passes` groups by it)';
COMMENT ON COLUMN guard.detection_runs.window_start IS 'the start of the window the pass read (rows written since, plus the rows of the open alerts it probed); NULL: the whole history';
COMMENT ON COLUMN guard.detection_runs.check_id IS 'the check run (`guard.checks.id`: `call_without_direction`, ...)';
COMMENT ON COLUMN guard.detection_runs.rule_id IS 'the check''s rule (`guard.rules.id`: `I1_call_direction` …)';
COMMENT ON COLUMN guard.detection_runs.duration_ms IS 'how long this check took in the pass, reading its view and writing its alerts, ms';
COMMENT ON COLUMN guard.detection_runs.offending IS 'rows the check found offending, every company';
COMMENT ON COLUMN guard.detection_runs.opened IS 'alerts it opened (new, or again after a silence longer than `alert_throttle_seconds` past the next pass)';
COMMENT ON COLUMN guard.detection_runs.repeated IS 'open alerts it found again (their `occurrences` counted up only when `last_seen_at` was due for a refresh, 30 to 60 minutes)';
COMMENT ON COLUMN guard.detection_runs.resolved IS 'open alerts it resolved as fixed (their row no longer offends)';
COMMENT ON COLUMN guard.detection_runs.run_by IS 'the database role that ran the pass';
COMMENT ON COLUMN guard.detection_runs.outcome IS '`pass`, `warn` or `fail` against the check''s thresholds (`guard.checks.warn_above`, `error_above`, `threshold_unit`); NULL for a check without thresholds';
COMMENT ON COLUMN guard.detection_runs.read_to IS 'after a burst (a window of more than `detection_full_window_calls` calls): the pass read the older rows of its window up to this time, at most `detection_slice_calls` calls, and the next pass goes on from here; NULL: it read every row up to the pass';

-- guard.validation_metrics
COMMENT ON TABLE guard.validation_metrics IS
'one row per post-booking validation (`guard.validate_booking`, which the application calls after each booking): outcome and latency; kept 30 days (`retention_validation_metrics_days`)';

COMMENT ON COLUMN guard.validation_metrics.id IS 'the row''s id, increasing';
COMMENT ON COLUMN guard.validation_metrics.company_id IS 'the company of the call';
COMMENT ON COLUMN guard.validation_metrics.call_id IS 'the call whose booking was validated';
COMMENT ON COLUMN guard.validation_metrics.appointment_id IS 'the appointment the application recorded for the booking; it may not exist (`appointment_not_found`, or removed when the booking was rolled back)';
COMMENT ON COLUMN guard.validation_metrics.ok IS '`true`: the booking is consistent; `false`: it is not (`failure_reason` says why) and the application rolls it back';
COMMENT ON COLUMN guard.validation_metrics.failure_reason IS '`appointment_not_found`, `appointment_inactive`, `appointment_not_on_call`, `company_mismatch`, `booking_uid_mismatch`, `appointment_not_recent`, `call_flags_disagree`; NULL when `ok`';
COMMENT ON COLUMN guard.validation_metrics.latency_ms IS 'how long the validation took in the database, ms (not the application''s round trip)';
COMMENT ON COLUMN guard.validation_metrics.measured_at IS 'when the validation ran; its UTC day is the `day` of `guard.validation_latency_daily`';

-- guard.alerts
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

-- guard.review_items
COMMENT ON TABLE guard.review_items IS
'one row per problem queued for a person (a failed or unknown booking, an orphaned or cross-tenant appointment), queued by the booking path and reconcile, claimed and closed by reviewers';

COMMENT ON COLUMN guard.review_items.id IS 'the review item';
COMMENT ON COLUMN guard.review_items.company_id IS 'the company the problem belongs to';
COMMENT ON COLUMN guard.review_items.call_id IS 'the call concerned; NULL for an orphaned or cross-tenant appointment (see `appointment_id`)';
COMMENT ON COLUMN guard.review_items.appointment_id IS 'the appointment concerned, for an orphaned or cross-tenant appointment; NULL for a call''s problem';
COMMENT ON COLUMN guard.review_items.reason IS 'why: `booking_outcome_unknown`, `validation_failure`, `calendar_only_booking` (the calendar has an active booking the database could not record), `calendar_booking_failure`, `missing_in_calendar` (an active appointment the calendar no longer has), `customer_creation_failure`, `service_not_found` or `other` (`details.problem` may say more)';
COMMENT ON COLUMN guard.review_items.priority IS '0 `booking_outcome_unknown`, 1 `validation_failure` and `calendar_only_booking`, 2 `calendar_booking_failure` and `missing_in_calendar`, 3 `customer_creation_failure`, 4 `service_not_found`, 5 `other`; lowest first, then oldest';
COMMENT ON COLUMN guard.review_items.details IS 'jsonb: what the reviewer needs (the application''s context, idempotency key, `still_booked`, `problem`); phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.status IS '`open` (waiting), `claimed` (a reviewer has it), `resolved` (dealt with) or `dismissed` (nothing to do; see `false_positive`)';
COMMENT ON COLUMN guard.review_items.created_at IS 'when the problem was queued';
COMMENT ON COLUMN guard.review_items.claimed_by IS 'the label the reviewer gave when claiming (by default the user name); NULL if never claimed; phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.claimed_at IS 'when it was claimed; NULL if never claimed (an item may be closed straight from `open`)';
COMMENT ON COLUMN guard.review_items.closed_by IS 'who closed it: the reviewer''s label, `guard:review_sweep` (problem gone) or `booking-guard` (booking settled, company deleted); NULL until closed; phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.closed_at IS 'when it was resolved or dismissed; NULL while open or claimed';
COMMENT ON COLUMN guard.review_items.note IS 'why it was closed (a note is required to close); NULL until closed; phone numbers masked in `guard.review_items_report`';
COMMENT ON COLUMN guard.review_items.false_positive IS 'true: dismissed because detection was wrong (counts for the `false_positive_rate` KPI); only a `dismissed` item can be true';
COMMENT ON COLUMN guard.review_items.claimed_by_role IS 'the database login that claimed it, recorded by the database (cannot be set by hand); NULL if never claimed';
COMMENT ON COLUMN guard.review_items.closed_by_role IS 'the database login that closed it (a reviewer, or the login that ran the job or booking), recorded by the database; NULL until closed';

-- guard.correction_audit
COMMENT ON TABLE guard.correction_audit IS
'one row per automatic correction of a call or appointment (by reconcile, `guard db validate` or the commit-time flag check): the rule restored, the row, before and after';

COMMENT ON COLUMN guard.correction_audit.id IS 'the correction';
COMMENT ON COLUMN guard.correction_audit.rule_id IS 'the rule it restores (`guard.rules.id`): `I1_call_direction`, `I2_customer_link`, `I3_appointment_flags`, `I4_booked_outcome`, `I6_voice_appointment_call` (a check id in rows from before migration 0027)';
COMMENT ON COLUMN guard.correction_audit.company_id IS 'the company of the corrected row';
COMMENT ON COLUMN guard.correction_audit.entity_type IS 'what was corrected: `call` or `appointment`';
COMMENT ON COLUMN guard.correction_audit.entity_id IS 'the id of that call or appointment';
COMMENT ON COLUMN guard.correction_audit.before IS 'jsonb: the corrected columns before the correction; phone numbers masked in `guard.correction_audit_report`';
COMMENT ON COLUMN guard.correction_audit.after IS 'jsonb: the same columns after it; phone numbers masked in `guard.correction_audit_report`';
COMMENT ON COLUMN guard.correction_audit.reason IS 'why, in words: `reconcile: missing direction`, `legacy row: ...` (`guard db validate`), or what the corrected write did (`an update wrote booking flags that contradict the appointments`)';
COMMENT ON COLUMN guard.correction_audit.actor IS 'the database role that made the correction; for a correction at commit, the login whose write was corrected';
COMMENT ON COLUMN guard.correction_audit.corrected_at IS 'when the correction was made';

-- guard.booking_attempts
COMMENT ON TABLE guard.booking_attempts IS
'one row per attempt to book a call in the external calendar (the booking journal), recorded by the application''s booking path before the calendar is called';

COMMENT ON COLUMN guard.booking_attempts.id IS 'the attempt';
COMMENT ON COLUMN guard.booking_attempts.company_id IS 'the company of the call';
COMMENT ON COLUMN guard.booking_attempts.call_id IS 'the call being booked';
COMMENT ON COLUMN guard.booking_attempts.service_id IS 'the service being booked';
COMMENT ON COLUMN guard.booking_attempts.idempotency_key IS 'the key the calendar received with the request (a UUID, unique): look the booking up in the calendar with it';
COMMENT ON COLUMN guard.booking_attempts.state IS '`calling` (calendar asked), `booked`, `failed`, `queued` (the service''s circuit was open or its bulkhead full: the calendar was not asked, the call was queued for review; not a failed booking), `unknown` (still calling after `booking_attempt_timeout_seconds` (120 s): in review), `recovered` (unknown, then found booked)';
COMMENT ON COLUMN guard.booking_attempts.started_by IS 'the database login that started it (the booking application''s)';
COMMENT ON COLUMN guard.booking_attempts.created_at IS 'when the attempt was recorded, just before the calendar was called';
COMMENT ON COLUMN guard.booking_attempts.finished_at IS 'when it was settled (`booked`, `failed`, `queued`, `recovered`); NULL while `calling` or `unknown`';
COMMENT ON COLUMN guard.booking_attempts.booking_uid IS 'the calendar''s booking uid: set when `booked` or `recovered`; when `failed`, the uid the calendar returned, if the booking path passed one';
COMMENT ON COLUMN guard.booking_attempts.appointment_id IS 'the appointment recorded for it: set when `booked` or `recovered`, else NULL';
COMMENT ON COLUMN guard.booking_attempts.failure_reason IS 'why it failed: the review reason (`calendar_booking_failure`, `validation_failure`, ...) or `settled in review by <label>`; for `queued` the review reason it was queued under; NULL unless `failed` or `queued`';
COMMENT ON COLUMN guard.booking_attempts.calendar_calls IS 'how many times the booking path asked the calendar for it, retries included (0: the circuit refused before the calendar was asked); NULL when something else settled it (`recover_attempts`, a reconciliation, a person), while `calling` or `unknown`, or for attempts before migration 0100';
COMMENT ON COLUMN guard.booking_attempts.trace_id IS 'the OpenTelemetry trace id (32 hex digits) of the booking that began the attempt, when the application traces (docs/tracing.md); NULL without tracing';

-- guard.breaker_events
COMMENT ON TABLE guard.breaker_events IS
'one row per circuit breaker transition or manual action (`guard breaker trip` ...), written behind by the application''s breakers; kept `retention_breaker_events_days` (90)';

COMMENT ON COLUMN guard.breaker_events.id IS 'the event';
COMMENT ON COLUMN guard.breaker_events.key IS 'the circuit: `appointment_booking:service:<id>`, `appointment_booking:staff:<id>` or `appointment_booking:global`';
COMMENT ON COLUMN guard.breaker_events.generation IS 'the circuit''s generation after this event (every transition adds 1); one event per circuit and generation';
COMMENT ON COLUMN guard.breaker_events.from_state IS 'the state before: `closed`, `open`, `half_open`, `forced_open`, `forced_closed` or `disabled`';
COMMENT ON COLUMN guard.breaker_events.to_state IS 'the state entered (the same values as `from_state`)';
COMMENT ON COLUMN guard.breaker_events.reason IS 'why: automatic, e.g. `3 consecutive failures`, `cooldown elapsed`, `probe failed`, `2 probe successes`, a failure rate; manual, `<action>: <reason>` (`force_open`, `force_close`, `disable`, `reset`)';
COMMENT ON COLUMN guard.breaker_events.failure_count IS 'consecutive failures counted when it happened';
COMMENT ON COLUMN guard.breaker_events.success_count IS 'probe successes counted (in `half_open`) when it happened';
COMMENT ON COLUMN guard.breaker_events.actor IS 'who took a manual action (`user@host` by default); NULL for an automatic transition';
COMMENT ON COLUMN guard.breaker_events.host IS 'the host of the process that decided it (an application process, or the `guard breaker` command)';
COMMENT ON COLUMN guard.breaker_events.pid IS 'the operating-system process id of that process';
COMMENT ON COLUMN guard.breaker_events.occurred_at IS 'when it happened (the breaker''s Redis clock)';
COMMENT ON COLUMN guard.breaker_events.recorded_at IS 'when it was written to PostgreSQL (written behind, usually moments later)';

-- guard.daily_reports
COMMENT ON TABLE guard.daily_reports IS
'one row per UTC day and company: the stored daily consistency report, written by the `daily_report` job (02:00 UTC, for yesterday) or `guard report --date`; `guard.daily_report_view` unpacks it';

COMMENT ON COLUMN guard.daily_reports.report_date IS 'the UTC day (only days that have ended are stored)';
COMMENT ON COLUMN guard.daily_reports.company_id IS 'the company';
COMMENT ON COLUMN guard.daily_reports.total_calls IS 'calls created that day';
COMMENT ON COLUMN guard.daily_reports.inconsistent_calls IS 'the day''s calls that at least one of the day''s alerts concerns';
COMMENT ON COLUMN guard.daily_reports.inconsistency_rate_pct IS '`inconsistent_calls / total_calls`, percent, 2 decimals (0 when there were no calls)';
COMMENT ON COLUMN guard.daily_reports.auto_corrected IS 'corrections made automatically that day (rows of `guard.correction_audit`)';
COMMENT ON COLUMN guard.daily_reports.manual_reviews IS 'review items created that day (problems left to a person)';
COMMENT ON COLUMN guard.daily_reports.open_review_items IS 'review items open or claimed when the report was generated';
COMMENT ON COLUMN guard.daily_reports.by_rule IS 'jsonb: the day''s alerts per rule (an alert counts for its check''s rule), `{"I1_call_direction": 12, ...}`';
COMMENT ON COLUMN guard.daily_reports.top_issues IS 'jsonb: the five rules with most alerts, `[{"rule_id", "count", "severity", "description", "likely_cause", "action"}]` (cause and action from `guard.rules`)';
COMMENT ON COLUMN guard.daily_reports.trend IS 'jsonb: against the reports stored for the 7 days before: `previous_days`, `previous_mean_rate_pct`, `delta_pct_points` (positive is worse), `direction` (`better`, `worse`, `same`, `no_data`); `previous_mean_recovery_rate_pct`, `recovery_delta_pct_points` (positive is better), `previous_mean_detection_latency_p95_seconds`, `detection_latency_delta_seconds` (positive is slower), NULL where either side measured none';
COMMENT ON COLUMN guard.daily_reports.generated_at IS 'when the row was generated';
COMMENT ON COLUMN guard.daily_reports.by_check IS 'jsonb: the same alerts per check, `{"call_without_direction": 12, ...}`';
COMMENT ON COLUMN guard.daily_reports.total_appointments IS 'appointments created that day (booked, whatever became of them)';
COMMENT ON COLUMN guard.daily_reports.recovery_rate_pct IS 'of the day''s alerts, percent resolved as fixed or settled in review by the time the report was generated; NULL when there were none';
COMMENT ON COLUMN guard.daily_reports.detection_latency_p95_seconds IS '95th percentile of `first_seen_at - coalesce(written_at, observed_at)` of the day''s alerts opened by detection (the commit that made a row bad -> its alert); NULL when there were none';
COMMENT ON COLUMN guard.daily_reports.action_items IS 'jsonb: what a person should do, most urgent first: `[{"kind": "open_alerts", "rule_id", "severity", "count", "action"}, {"kind": "review_queue", "count", "action"}]` (the day''s alerts still open, per rule; the review items open or claimed)';

-- guard.daily_report_view: the columns it derives (the others in guard.report_views.sql)
COMMENT ON VIEW guard.daily_report_view IS
'one row per UTC day and company: the stored daily report (the `daily_report` job at 02:00 UTC for yesterday, or `guard report --date D`)';

COMMENT ON COLUMN guard.daily_report_view.company_name IS 'the company''s name';
COMMENT ON COLUMN guard.daily_report_view.consistent_calls IS '`total_calls - inconsistent_calls`';
COMMENT ON COLUMN guard.daily_report_view.consistency_rate_pct IS '`100 - inconsistency_rate_pct`; NULL when there were no calls';
COMMENT ON COLUMN guard.daily_report_view.auto_correction_rate_pct IS '`auto_corrected / (auto_corrected + manual_reviews)`, percent; NULL when both are 0';
COMMENT ON COLUMN guard.daily_report_view.top_rule IS 'the rule with the most of the day''s alerts (an alert counts for its check''s rule)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_rate_pct IS 'mean `inconsistency_rate_pct` of the reports stored for the 7 days before (NULL if none)';
COMMENT ON COLUMN guard.daily_report_view.trend_delta_pct_points IS '`inconsistency_rate_pct - previous_7_days_rate_pct` (positive is worse)';
COMMENT ON COLUMN guard.daily_report_view.trend_direction IS '`better`, `worse`, `same`, or `no_data` (no stored day before)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_recovery_rate_pct IS 'mean `recovery_rate_pct` of the reports stored for the 7 days before (NULL if none measured one)';
COMMENT ON COLUMN guard.daily_report_view.recovery_delta_pct_points IS '`recovery_rate_pct - previous_7_days_recovery_rate_pct` (positive is better; NULL if either is NULL)';
COMMENT ON COLUMN guard.daily_report_view.previous_7_days_detection_latency_p95_seconds IS 'mean `detection_latency_p95_seconds` of the reports stored for the 7 days before (NULL if none measured one)';
COMMENT ON COLUMN guard.daily_report_view.detection_latency_delta_seconds IS '`detection_latency_p95_seconds - previous_7_days_detection_latency_p95_seconds` (positive is slower; NULL if either is NULL)';

-- guard.kpis
COMMENT ON VIEW guard.kpis IS
'one row per KPI of the design, live: its target (from `guard.settings`), current value and status';

COMMENT ON COLUMN guard.kpis.kpi IS 'the KPI''s name: `consistency_rate`, `validation_latency_p95`, `breaker_recovery_time`, `auto_correction_rate`, `review_queue_size`, `false_positive_rate`, `detection_latency_p95`, `alert_response_p95`';
COMMENT ON COLUMN guard.kpis.description IS 'what is measured';
COMMENT ON COLUMN guard.kpis.target IS 'the target, from `guard.settings` (tunable)';
COMMENT ON COLUMN guard.kpis.comparison IS '`>=` (at least the target) or `<=` (at most)';
COMMENT ON COLUMN guard.kpis.current_value IS 'the measured value; NULL when there is nothing to measure';
COMMENT ON COLUMN guard.kpis.unit IS '`percent`, `ms`, `seconds`, `items`';
COMMENT ON COLUMN guard.kpis.status IS '`ok` (target met), `breach` (missed), `no_data` (nothing in the window)';
COMMENT ON COLUMN guard.kpis.time_window IS 'the window measured: `24 hours`, `7 days`, `30 days`, `now`';
COMMENT ON COLUMN guard.kpis.sample_size IS 'how many calls, samples, events or items the value is computed from';

-- guard.job_status
COMMENT ON VIEW guard.job_status IS
'one row per scheduled job: its newest run and whether it is overdue, for an "is Booking Guard running" panel';

COMMENT ON COLUMN guard.job_status.job_name IS 'the job (`guard.jobs.name`)';
COMMENT ON COLUMN guard.job_status.schedule IS 'when it runs: a cron expression in UTC';
COMMENT ON COLUMN guard.job_status.interval_seconds IS 'seconds between two runs';
COMMENT ON COLUMN guard.job_status.enabled IS 'false: switched off by a DBA, not run on its schedule and never overdue';
COMMENT ON COLUMN guard.job_status.description IS 'what the job does';
COMMENT ON COLUMN guard.job_status.last_started_at IS 'when the newest run started';
COMMENT ON COLUMN guard.job_status.last_finished_at IS 'when the newest run finished (NULL: never run)';
COMMENT ON COLUMN guard.job_status.last_status IS 'the newest run''s outcome: `succeeded` or `failed`';
COMMENT ON COLUMN guard.job_status.last_error IS 'the newest run''s error, when it failed';
COMMENT ON COLUMN guard.job_status.last_duration_ms IS 'how long the newest run took, ms';
COMMENT ON COLUMN guard.job_status.last_runner IS 'who ran it: the session''s application name, `pg_cron` under pg_cron';
COMMENT ON COLUMN guard.job_status.last_success_at IS 'when the newest successful run finished';
COMMENT ON COLUMN guard.job_status.next_due_at IS 'when an external runner runs it next (last start + interval)';
COMMENT ON COLUMN guard.job_status.overdue IS 'enabled and no success within twice its interval: a `job_missed` alert is open';

-- guard.detection_passes
COMMENT ON VIEW guard.detection_passes IS
'one row per windowed detection pass (the detect job, `guard check`; not the batches of `guard check --all`), from `guard.detection_runs`; counts span every company';

COMMENT ON COLUMN guard.detection_passes.pass_started_at IS 'when the pass started';
COMMENT ON COLUMN guard.detection_passes.window_start IS 'the start of the window it read (NULL: the whole history, `guard.run_detection(''-infinity'')`)';
COMMENT ON COLUMN guard.detection_passes.run_by IS 'the database role that ran it';
COMMENT ON COLUMN guard.detection_passes.checks IS 'detection checks run';
COMMENT ON COLUMN guard.detection_passes.duration_ms IS 'the time its checks took, summed, ms, 3 decimals';
COMMENT ON COLUMN guard.detection_passes.offending IS 'rows found offending, all checks';
COMMENT ON COLUMN guard.detection_passes.opened IS 'alerts opened';
COMMENT ON COLUMN guard.detection_passes.repeated IS 'open alerts seen again';
COMMENT ON COLUMN guard.detection_passes.resolved IS 'alerts resolved as fixed';
COMMENT ON COLUMN guard.detection_passes.offending_by_check IS 'jsonb: `{"check_id": rows}` for each check that found something';
COMMENT ON COLUMN guard.detection_passes.checks_warned IS 'checks above their warn threshold (`guard.checks.warn_above`), not their error one';
COMMENT ON COLUMN guard.detection_passes.checks_failed IS 'checks above their error threshold (`guard.checks.error_above`)';

-- guard.validation_latency_daily
COMMENT ON VIEW guard.validation_latency_daily IS
'one row per UTC day and company: post-booking validations (`guard.validate_booking`), failures and latency, from `guard.validation_metrics`';

COMMENT ON COLUMN guard.validation_latency_daily.day IS 'the UTC day of the measurements';
COMMENT ON COLUMN guard.validation_latency_daily.company_id IS 'the company';
COMMENT ON COLUMN guard.validation_latency_daily.validations IS 'validations run that day';
COMMENT ON COLUMN guard.validation_latency_daily.failures IS 'validations that found the booking inconsistent';
COMMENT ON COLUMN guard.validation_latency_daily.p50_ms IS 'median latency (interpolated), ms, 3 decimals';
COMMENT ON COLUMN guard.validation_latency_daily.p95_ms IS '95th percentile latency (interpolated), ms, 3 decimals';
COMMENT ON COLUMN guard.validation_latency_daily.p99_ms IS '99th percentile latency (interpolated), ms, 3 decimals';
COMMENT ON COLUMN guard.validation_latency_daily.max_ms IS 'the slowest validation, ms';

-- guard.calls_report
COMMENT ON VIEW guard.calls_report IS
'one row per call of the reader''s companies: every column of `public.calls` a report needs, phone numbers masked (`+49 30 ****567`)';

COMMENT ON COLUMN guard.calls_report.id IS 'the call';
COMMENT ON COLUMN guard.calls_report.company_id IS 'the company the call belongs to';
COMMENT ON COLUMN guard.calls_report.retell_call_id IS 'the voice agent''s id of the call';
COMMENT ON COLUMN guard.calls_report.from_number_masked IS 'the caller''s number, masked (country and area code and the last three digits kept)';
COMMENT ON COLUMN guard.calls_report.to_number_masked IS 'the called number, masked (country and area code and the last three digits kept)';
COMMENT ON COLUMN guard.calls_report.status IS 'the call''s status, as the application records it';
COMMENT ON COLUMN guard.calls_report.direction IS '`inbound` or `outbound` (I1)';
COMMENT ON COLUMN guard.calls_report.customer_id IS 'the customer the call is linked to; NULL when unlinked or anonymous (I2)';
COMMENT ON COLUMN guard.calls_report.customer_link_status IS '`linked` (with a customer), `unlinked` or `anonymous` (I2)';
COMMENT ON COLUMN guard.calls_report.customer_link_method IS 'how the customer was found; set whenever a customer is linked (I2)';
COMMENT ON COLUMN guard.calls_report.customer_link_confidence IS 'how sure the link is, percent 0-100; set whenever a customer is linked (I2)';
COMMENT ON COLUMN guard.calls_report.customer_linked_at IS 'when the customer was linked (I2)';
COMMENT ON COLUMN guard.calls_report.session_outcome IS 'what the call achieved (`appointment_booked`, ...; the known set is the setting `known_session_outcomes`, I3/I8)';
COMMENT ON COLUMN guard.calls_report.appointment_made IS 'true when the call has an active appointment (kept true by Booking Guard, I3)';
COMMENT ON COLUMN guard.calls_report.appointment_link_status IS '`linked` when the call has an active appointment; `unlinked` once its last one went; `creation_failed` when its booking was rolled back (the calendar never made it); NULL when never linked (I3)';
COMMENT ON COLUMN guard.calls_report.appointment_linked_at IS 'when the appointment was linked (I3)';
COMMENT ON COLUMN guard.calls_report.booking_id IS 'the calendar''s booking id';
COMMENT ON COLUMN guard.calls_report.booking_confirmed IS 'the calendar confirmed the booking';
COMMENT ON COLUMN guard.calls_report.booking_failed IS 'the booking failed or was rolled back (I7); also true for a call queued because the service''s circuit was open, whose last attempt in guard.booking_attempts is `queued` (not a failed booking)';
COMMENT ON COLUMN guard.calls_report.booking_failure_reason IS 'why the booking failed, free text of the application, phone numbers masked';
COMMENT ON COLUMN guard.calls_report.requires_manual_processing IS 'flagged for a person by the application';
COMMENT ON COLUMN guard.calls_report.created_at IS 'when the call row was written';
COMMENT ON COLUMN guard.calls_report.updated_at IS 'when the call row last changed';
