-- 0035_detection_at_volume: detection whose cost does not depend on fresh statistics, and a
-- check_call that never waits on the windowed pass.
--   guard.run_detection          the windowed pass reads the open alerts of a check first (index
--                                led by check_id) and the view for exactly their entities
--                                (entity_id = ANY): a stale estimate of 1 open alert can no longer
--                                become a nested loop around a sequential scan of calls; it
--                                resolves only alerts open before it read the view. check_call's
--                                pass takes a lock of its call, not the detection lock, and waits
--                                at most check_call_lock_timeout_ms on alert rows held by another
--                                transaction (then leaves them to it);
--   guard.run_job                a statement timeout (or cancel) of the job is recorded as a
--                                failure (job_failed), like any other error;
--   guard.recheck_alerts_between the end of `guard check --all`: open alerts re-checked a range of
--                                ids per transaction instead of one windowed pass over all;
--   guard.settings               detection_statement_timeout_ms (60000: the runner and guard check
--                                arm statement_timeout with it), check_call_lock_timeout_ms (5).
-- Locks: none on tables (functions, and two rows of guard.settings).

-- One batch of the end of `guard check --all`: re-check the entity of every open alert whose id is
-- in (after_id, up_to_id] against its check's view and resolve the alerts whose row no longer
-- offends (resolution fixed). The batches of detect_between open and bump; this resolves, a range
-- of alert ids at a time, so no transaction re-checks millions of open alerts at once. Each
-- check's view is read for exactly the batch's entities (entity_id = ANY: its primary key), so
-- the plan does not depend on how fresh the statistics of guard.alerts are.
CREATE OR REPLACE FUNCTION guard.recheck_alerts_between(after_id bigint, up_to_id bigint)
RETURNS TABLE (check_id text, rule_id text, rechecked integer, resolved integer)
LANGUAGE plpgsql
SET search_path = pg_catalog
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    detection_check record;
    batch_checks text[];
    batch_ids bigint[];
    batch_fingerprints text[];
    open_ids bigint[];
    open_fingerprints text[];
    still_offending text[];
BEGIN
    IF after_id IS NULL OR up_to_id IS NULL OR after_id >= up_to_id THEN
        RAISE EXCEPTION 'recheck_alerts_between needs after_id < up_to_id (got % and %)', after_id, up_to_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    SELECT
        coalesce(array_agg(a.check_id), '{}'),
        coalesce(array_agg(a.entity_id), '{}'),
        coalesce(array_agg(a.fingerprint), '{}')
    INTO batch_checks, batch_ids, batch_fingerprints
    FROM guard.alerts AS a
    WHERE a.id > after_id AND a.id <= up_to_id AND a.status = 'open';
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        SELECT coalesce(array_agg(b.entity_id), '{}'), coalesce(array_agg(b.fingerprint), '{}')
        INTO open_ids, open_fingerprints
        FROM unnest(batch_checks, batch_ids, batch_fingerprints) AS b (check_id, entity_id, fingerprint)
        WHERE b.check_id = detection_check.id;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        rechecked := cardinality(open_ids);
        resolved := 0;
        IF rechecked > 0 THEN
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(v.fingerprint), '{}')
                FROM (
                    SELECT k.check_id || ':' || k.entity_type || ':' || k.entity_id AS fingerprint
                    FROM guard.%1$I AS k
                    WHERE k.entity_id = ANY($1)
                ) AS v
                WHERE v.fingerprint = ANY($2)
                $query$,
                detection_check.check_view
            ) INTO still_offending USING open_ids, open_fingerprints;

            UPDATE guard.alerts AS a
            SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
            WHERE
                a.status = 'open'
                AND a.fingerprint = ANY(open_fingerprints)
                AND NOT a.fingerprint = ANY(still_offending);
            GET DIAGNOSTICS resolved = ROW_COUNT;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Run every enabled check that has a check view (guard.checks), over one scope, and keep
-- guard.alerts in step:
--   since     rows observed since then (the windowed pass: detect)
--   only_call the rows of one call (check_call); since is then ignored
-- In the windowed pass each check also re-checks the entity of every open alert of that check, so
-- that an alert whose row was fixed is resolved even when the row is older than the window. Alerts
-- are de-duplicated by fingerprint (check:entity_type:entity_id): a repeat within the throttle
-- window (alert_throttle_seconds) bumps occurrences and last_seen_at; a repeat after a longer
-- silence closes the old alert as superseded and opens a new one. Nothing is deleted or rewritten.
-- Windowed passes are serialised by a transaction advisory lock. A call's pass (check_call) never
-- waits on it: it takes a lock of its own call only, and waits at most check_call_lock_timeout_ms
-- on alert rows another transaction holds (the windowed pass writing the same alerts); past that
-- it leaves that check's alerts to the transaction that holds them and reports 0 opened, repeated
-- and resolved for it. The unique index on open fingerprints keeps one open alert per fingerprint
-- whichever writer wins. One row per check, with its rule.
CREATE OR REPLACE FUNCTION guard.run_detection(since timestamptz, only_call bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer
)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Each check's query is a few index scans; starting parallel workers costs more than it saves
-- (measured: 78 -> about 40 ms per pass over 1 000 000 calls).
SET max_parallel_workers_per_gather = 0
SET jit = off
AS $$
DECLARE
    detection_check record;
    findings guard.finding[];
    open_ids bigint[];
    open_fingerprints text[];
    caller_lock_timeout text := current_setting('lock_timeout');
    call_lock_timeout text;
    throttle interval := make_interval(
        secs => (guard.setting('alert_throttle_seconds') #>> '{}')::integer
    );
BEGIN
    IF only_call IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
    ELSE
        -- Two checks of one call run one after the other; the windowed pass is not waited for.
        PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection:call:' || only_call, 0));
        call_lock_timeout := (guard.setting('check_call_lock_timeout_ms') #>> '{}') || 'ms';
    END IF;
    FOR detection_check IN
        SELECT k.id, k.rule_id, k.check_view, k.description
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY k.id
    LOOP
        IF only_call IS NULL THEN
            -- The open alerts of this check first, through the index led by check_id, then the
            -- view for exactly those entities (entity_id = ANY: its primary key). Joined in one
            -- query, statistics taken before a burst of new alerts (an estimate of 1 open alert
            -- for thousands) made the planner loop over a sequential scan of calls per alert.
            SELECT coalesce(array_agg(a.entity_id), '{}'), coalesce(array_agg(a.fingerprint), '{}')
            INTO open_ids, open_fingerprints
            FROM guard.alerts AS a
            WHERE a.status = 'open' AND a.check_id = detection_check.id;
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM (
                    SELECT w.* FROM guard.%1$I AS w WHERE w.observed_at >= $1
                    UNION
                    SELECT k.*
                    FROM guard.%1$I AS k
                    WHERE
                        k.entity_id = ANY($2)
                        AND k.check_id || ':' || k.entity_type || ':' || k.entity_id = ANY($3)
                ) AS v
                $query$,
                detection_check.check_view
            ) INTO findings USING since, open_ids, open_fingerprints;
        ELSE
            EXECUTE format(
                $query$
                SELECT coalesce(array_agg(ROW(
                    v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                    v.observed_at, v.detail
                )::guard.finding), '{}')
                FROM guard.%1$I AS v
                WHERE v.call_id = $1
                $query$,
                detection_check.check_view
            ) INTO findings USING only_call;
        END IF;

        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        offending := cardinality(findings);

        IF only_call IS NOT NULL THEN
            PERFORM set_config('lock_timeout', call_lock_timeout, TRUE);
        END IF;
        BEGIN
            -- A repeat after a silence longer than the throttle window starts a new alert.
            UPDATE guard.alerts AS a
            SET status = 'resolved', resolved_at = a.last_seen_at, resolution = 'superseded'
            FROM unnest(findings) AS f
            WHERE
                a.status = 'open'
                AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id
                AND a.last_seen_at < now() - throttle;

            UPDATE guard.alerts AS a
            SET occurrences = a.occurrences + 1, last_seen_at = now()
            FROM unnest(findings) AS f
            WHERE a.status = 'open' AND a.fingerprint = f.check_id || ':' || f.entity_type || ':' || f.entity_id;
            GET DIAGNOSTICS repeated = ROW_COUNT;

            INSERT INTO guard.alerts (
                fingerprint, check_id, company_id, entity_type, entity_id, severity, message, details
            )
            SELECT
                f.check_id || ':' || f.entity_type || ':' || f.entity_id,
                f.check_id,
                f.company_id,
                f.entity_type,
                f.entity_id,
                f.severity,
                detection_check.description,
                f.detail || CASE
                    WHEN f.call_id IS NOT NULL AND f.entity_type <> 'call'
                        THEN jsonb_build_object('call_id', f.call_id)
                    ELSE '{}'
                END
            FROM unnest(findings) AS f
            ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING;
            GET DIAGNOSTICS opened = ROW_COUNT;

            -- Open alerts of this check in this scope whose row no longer offends: fixed.
            UPDATE guard.alerts AS a
            SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
            WHERE
                a.status = 'open'
                AND a.check_id = detection_check.id
                -- Only alerts open before the view was read: one opened since (by a check_call)
                -- is not in its findings and must not look fixed.
                AND (only_call IS NOT NULL OR a.fingerprint = ANY(open_fingerprints))
                AND (
                    only_call IS NULL
                    OR (a.entity_type = 'call' AND a.entity_id = only_call)
                    OR (
                        a.entity_type = 'appointment'
                        AND a.entity_id IN (
                            SELECT ap.id FROM public.appointments AS ap WHERE ap.call_id = only_call
                        )
                    )
                )
                AND a.fingerprint NOT IN (
                    SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id FROM unnest(findings) AS f
                );
            GET DIAGNOSTICS resolved = ROW_COUNT;
        EXCEPTION WHEN lock_not_available THEN
            IF only_call IS NULL THEN
                RAISE;
            END IF;
            -- Another transaction holds this call's alerts of this check (the windowed pass
            -- writing them): it keeps them; its commit is what the alerts show.
            opened := 0;
            repeated := 0;
            resolved := 0;
        END;
        IF only_call IS NOT NULL THEN
            PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- Run one job now: what pg_cron and `guard jobs run` call. At most one run per job at a time (a
-- transaction-level advisory lock: a concurrent second run returns at once and says so), nothing
-- on a replica. The command from guard.jobs runs in a sub-transaction, so a failure rolls back
-- the job's work but is itself recorded in guard.job_runs and raised as a job_failed alert; a
-- success resolves the job's alerts. Every run ends with the missed-run check of all jobs.
-- Returns "<job>: succeeded|failed|skipped ..." (a failure is reported, not raised). A statement
-- timeout or a cancel of the run is recorded as a failure too.
CREATE OR REPLACE FUNCTION guard.run_job(job_name text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    job_command text;
    started timestamptz := clock_timestamp();
    finished timestamptz;
    run_status text := 'succeeded';
    run_error text;
    run_sqlstate text;
    elapsed_ms double precision;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN format('%s: skipped, this server is a replica (jobs run on the primary)', job_name);
    END IF;
    SELECT j.command INTO job_command FROM guard.jobs AS j WHERE j.name = run_job.job_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown Booking Guard job "%"', job_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended('booking-guard:job:' || job_name, 0)) THEN
        RETURN format('%s: skipped, already running in another session', job_name);
    END IF;

    BEGIN
        EXECUTE job_command;
    EXCEPTION
        -- OTHERS does not catch a cancel. A statement timeout (the runner arms
        -- detection_statement_timeout_ms for the detect job) is a failure of the job to record;
        -- the timer fires once, so the recording below still runs.
        WHEN query_canceled THEN
            GET STACKED DIAGNOSTICS run_error = MESSAGE_TEXT, run_sqlstate = RETURNED_SQLSTATE;
            run_error := format(
                '%s (ran longer than statement_timeout = %s)', run_error, current_setting('statement_timeout')
            );
            run_status := 'failed';
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS run_error = MESSAGE_TEXT, run_sqlstate = RETURNED_SQLSTATE;
            run_status := 'failed';
    END;

    finished := clock_timestamp();
    elapsed_ms := 1000 * extract(EPOCH FROM finished - started);
    INSERT INTO guard.job_runs (
        job_name, started_at, finished_at, status, error, sqlstate, duration_ms, runner
    ) VALUES (
        run_job.job_name, started, finished, run_status, run_error, run_sqlstate, elapsed_ms,
        coalesce(current_setting('application_name', TRUE), '')
    );

    IF run_status = 'failed' THEN
        PERFORM guard.open_job_alert(
            'job_failed',
            job_name,
            format('job %s failed: %s', job_name, run_error),
            jsonb_build_object('sqlstate', run_sqlstate, 'error', run_error, 'started_at', started)
        );
    ELSE
        PERFORM guard.resolve_job_alert('job_failed', job_name);
    END IF;
    PERFORM guard.check_job_heartbeats();

    IF run_status = 'failed' THEN
        RETURN format('%s: failed after %s ms: %s', job_name, round(elapsed_ms::numeric), run_error);
    END IF;
    RETURN format('%s: succeeded in %s ms', job_name, round(elapsed_ms::numeric));
END;
$$;

-- Ownership and grants of the new objects.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'detection_statement_timeout_ms', '60000', 'integer',
    'A detection pass (the detect job, guard check) running longer fails with a statement timeout.'
),
(
    'check_call_lock_timeout_ms', '5', 'integer',
    'check_call waits at most this long for alert rows another pass holds, then leaves them to it.'
);

SELECT guard.apply_grants();
