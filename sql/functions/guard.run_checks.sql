-- Run every enabled check that has a check view (guard.checks), over one scope, and keep
-- guard.alerts in step (guard.run_detection, guard.detect() and guard.check_call return its rows
-- without status and error; `guard check` reads them whole):
--   since     rows observed since then (the windowed pass: detect)
--   only_call the rows of one call (check_call); since is then ignored
-- In the windowed pass each check reads the rows observed since its previous pass (less an
-- overlap; after a burst, and a slice of the older rows, going on from its read_to), and re-checks
-- the entity of the open alerts of that check it did not find (every one up to
-- detection_probe_every_alerts, else those due for a refresh), so that an alert whose row was
-- fixed is resolved even when the row is older than what it read. Alerts are de-duplicated by
-- fingerprint (check:entity_type:entity_id): a repeat within the silence an alert may keep
-- (guard.alert_silence: the throttle window past the pass that was due) is counted, and written
-- (occurrences, last_seen_at) only when the alert is due for a refresh; a repeat after a longer
-- silence closes the old alert as superseded and opens a new one (guard.record_findings).
-- Nothing is deleted or rewritten.
-- Windowed passes are serialised by a transaction advisory lock. A call's pass (check_call) never
-- waits on it: it takes a lock of its own call only, and waits at most check_call_lock_timeout_ms
-- on alert rows another transaction holds (the windowed pass writing the same alerts); past that
-- it leaves that check's alerts to the transaction that holds them and reports 0 opened, repeated
-- and resolved for it. The unique index on open fingerprints keeps one open alert per fingerprint
-- whichever writer wins. One row per check, with its rule, and its status:
--   ok       the counts are what it found and wrote
--   failed   it raised (a view that fails on some row, returns a NULL an alert needs, was changed
--            under its registration): rolled back alone, error says why (phone numbers masked)
--   cut      the statement's timeout fired while it ran (the detect job arms
--            detection_statement_timeout_ms; an application may arm its own around check_call)
--   skipped  not run: after a cut, or past check_call's budget for own checks (error says which)
-- offending is NULL unless ok. Each check runs isolated in a block of its own (one
-- subtransaction, the one that kept a call's alert writes apart before), so one failing check
-- never stops the others, the pass or check_call; failed and cut raise a check_failed alert
-- (guard.open_check_alert: one per check, bumped by repeats; from check_call at most once a
-- minute, so the application's sessions do not queue on its row). Booking Guard's checks run
-- first, then a DBA's own (a view not in guard.shipped_check_views()): an own check never
-- delays or cuts a shipped one. PostgreSQL cannot arm a timer from inside a function, and the statement's timer
-- fires once: the check it cuts is rolled back and the checks after it are skipped (nothing
-- would bound them any more), what ran before is kept. In the windowed pass, own checks with an
-- open check_failed alert run after the other own checks, so the check cut in one pass does not
-- cut the others in the next; a windowed pass that runs a check through resolves its
-- check_failed alert (fixed), unless the sweep raised it. A cancel somebody asked for (not the
-- timer: guard.statement_timed_out) is passed on, as before.
-- check_call's budget for own checks: an own check starts only while less than
-- check_call_budget_ms has passed since check_call began. One that then takes longer than that
-- alone (or is cut by the caller's timeout) raises check_over_budget and is skipped by
-- check_call while that alert was seen within check_call_over_budget_minutes; tried again after
-- that, it resolves the alert when it keeps to the budget. A check that has started is not
-- interrupted (only the caller's statement_timeout can), so check_call takes at most the
-- shipped checks, plus the budget, plus one own check, and that at most once per
-- check_call_over_budget_minutes for a check that is too slow.
CREATE OR REPLACE FUNCTION guard.run_checks(since timestamptz, only_call bigint)
RETURNS TABLE (
    check_id text, rule_id text, offending integer, opened integer, repeated integer, resolved integer,
    status text, error text
)
LANGUAGE plpgsql
SET search_path = pg_catalog
-- Each check's query is a few index scans; starting parallel workers costs more than it saves
-- (docs/invariants.md, "Measured reasons for the shapes in sql/").
SET max_parallel_workers_per_gather = 0
SET jit = off
-- A pass reads a bounded set (the window, the open alerts) through indexes, on pages that are in
-- memory. Priced as disk reads (the default 4), probing appointments per open alert lost to a hash
-- join over every appointment, a cost that grows with the history: 420 ms of one check at 1M
-- calls, 200 ms at 1.1; the whole pass 18-26 % faster (docs/invariants.md).
SET random_page_cost = 1.1
-- And index paths only, whatever the statistics say: every read of a pass is bounded (the window,
-- the open alerts, one call) and keyed. On tables never analysed (after a bulk load) the planner
-- hashed every appointment or intersected a company's million calls per alert: the checks of one
-- pass over 10M calls took more than 110 s; with these, 0.65 s, and about the same as before once
-- analysed. A check view with no usable index still gets its sequential scan, priced high.
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    detection_check record;
    findings guard.finding[];
    open_alert_ids bigint[];
    open_ids bigint[];
    open_fingerprints text[];
    open_last_seen timestamptz[];
    open_observed timestamptz[];
    -- whether every open alert of the check is probed (else those due for a refresh)
    probe_every boolean;
    probe_every_up_to integer;
    unfound bigint[];
    -- the windowed pass: the check's previous pass that ran through (guard.detection_runs), the
    -- rows it read again (check_since), and the open alerts found again without a write
    previous_pass timestamptz;
    previous_window timestamptz;
    check_since timestamptz;
    -- after a burst: where the check's previous pass stopped reading the older rows (read_to),
    -- the end of this pass's slice of them, and where the head (the rows since that pass) begins
    previous_read_to timestamptz;
    slice_to timestamptz;
    head_from timestamptz;
    check_read_to timestamptz;
    slice_counted_from timestamptz;
    slice_counted_to timestamptz;
    -- the zone the application's timestamp-without-time-zone columns are written in
    app_zone text := guard.app_time_zone();
    quiet integer;
    quiet_in_window integer;
    -- How far before its previous pass a check reads again: 5 minutes for writers' transactions
    -- that were still open then (a row is observed at its transaction's start, and seen by a
    -- pass only once committed), and the grace period a claimed booking has before it offends.
    overlap interval;
    -- the windowed pass: whether the window is small enough to be read whole by every check
    whole_window boolean;
    call_query text;
    call_statement text;
    caller_lock_timeout text := current_setting('lock_timeout');
    call_lock_timeout text;
    -- check_call: the call's appointments, whose alerts its checks resolve with the call's own
    call_appointment_ids bigint[];
    appointment_id bigint;
    resolved_appointment integer;
    pass_started timestamptz := clock_timestamp();
    check_started timestamptz;
    silence interval := guard.alert_silence();
    window_calls bigint;
    check_outcome text;
    open_alerts bigint;
    superseded integer;
    failed_state text;
    -- the check during which the statement's timer fired (it fires once), and what it left
    cut_during text;
    checks_run integer := 0;
    checks_skipped integer := 0;
    failing_checks text[] := '{}'::text[];
    -- check_call's budget for own checks, read when the first own check comes
    own_read boolean := FALSE;
    own_budget interval;
    own_left_out interval;
    left_out_checks text[];
    -- own checks no detection pass has read through within the budget in the last day
    unmeasured_checks text[];
    -- the advisory locks held before the first own check was read (guard.read_own_check)
    own_locks text[];
    retried_checks text[];
BEGIN
    IF only_call IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection', 0));
        -- Kept up to date below, so that the planner's estimate can be checked before each
        -- check's statements (guard.analyze_alerts_if_stale) without counting again.
        SELECT count(*) INTO open_alerts FROM guard.alerts AS a WHERE a.status = 'open';
        overlap := interval '5 minutes'
            + make_interval(secs => (guard.setting('grace_period_seconds') #>> '{}')::integer);
        -- Counted on the created_at index, and never past the limit.
        probe_every_up_to := (guard.setting('detection_probe_every_alerts') #>> '{}')::integer;
        SELECT count(*) <= (guard.setting('detection_full_window_calls') #>> '{}')::integer
        INTO whole_window
        FROM (
            SELECT FROM public.calls AS c
            WHERE c.created_at >= guard.to_app_time(
                since, (SELECT x.created_at FROM public.calls AS x LIMIT 0), app_zone
            )
            LIMIT (guard.setting('detection_full_window_calls') #>> '{}')::integer + 1
        ) AS w;
        -- The checks whose failure alert is open run after the others (own ones: Booking
        -- Guard's run first anyway). check_call keeps the plain order: this costs it nothing.
        SELECT coalesce(array_agg(a.details ->> 'check'), '{}') INTO failing_checks
        FROM guard.alerts AS a
        WHERE a.status = 'open' AND a.check_id = 'check_failed';
    ELSE
        -- Two checks of one call run one after the other; the windowed pass is not waited for.
        PERFORM pg_advisory_xact_lock(hashtextextended('booking-guard:detection:call:' || only_call, 0));
        call_lock_timeout := (guard.setting('check_call_lock_timeout_ms') #>> '{}') || 'ms';
        SELECT coalesce(array_agg(ap.id), '{}') INTO call_appointment_ids
        FROM public.appointments AS ap
        WHERE ap.call_id = only_call;
    END IF;
    status := 'ok';
    error := NULL;
    FOR detection_check IN
        SELECT
            k.id, k.rule_id, k.check_view, k.description, k.threshold_unit,
            k.warn_above IS NOT NULL OR k.error_above IS NOT NULL AS has_thresholds,
            k.check_view <> ALL(guard.shipped_check_views()) AS own
        FROM guard.checks AS k
        WHERE k.enabled AND k.check_view IS NOT NULL
        ORDER BY
            k.check_view <> ALL(guard.shipped_check_views()),
            k.id = ANY(failing_checks),
            k.id
    LOOP
        check_started := clock_timestamp();
        check_id := detection_check.id;
        rule_id := detection_check.rule_id;
        -- NULL until the check's view has been read (the lock handler below tells by it)
        offending := NULL;
        -- status and error are ok and NULL here: set before the loop, and again after each
        -- check that was not (fewer statements per check on check_call's path)
        IF cut_during IS NOT NULL OR (only_call IS NOT NULL AND detection_check.own) THEN
            IF cut_during IS NOT NULL THEN
                status := 'skipped';
                error := format(
                    'the statement timeout (%s) fired during check %s',
                    current_setting('statement_timeout'), cut_during
                );
                checks_skipped := checks_skipped + 1;
            ELSE
                IF NOT own_read THEN
                    -- Once per check_call, at its first own check (none: nothing read): the
                    -- budget, and the own checks left out (their check_over_budget alert seen
                    -- within check_call_over_budget_minutes) or due to be tried again.
                    SELECT
                        make_interval(secs => (b.value #>> '{}')::integer / 1000.0),
                        make_interval(mins => (l.value #>> '{}')::integer)
                    INTO own_budget, own_left_out
                    FROM guard.settings AS b
                    CROSS JOIN guard.settings AS l
                    WHERE b.key = 'check_call_budget_ms' AND l.key = 'check_call_over_budget_minutes';
                    SELECT
                        coalesce(array_agg(a.details ->> 'check') FILTER (
                            WHERE a.last_seen_at > now() - own_left_out
                        ), '{}'),
                        coalesce(array_agg(a.details ->> 'check') FILTER (
                            WHERE a.last_seen_at <= now() - own_left_out
                        ), '{}')
                    INTO left_out_checks, retried_checks
                    FROM guard.alerts AS a
                    WHERE a.status = 'open' AND a.check_id = 'check_over_budget';
                    -- An own check joins check_call once a detection pass has read it through
                    -- within the budget (its latest guard.detection_runs row): a check never run
                    -- or too slow there would stall every booking that meets it first, all of
                    -- them at once under concurrency.
                    SELECT coalesce(array_agg(k.id), '{}') INTO unmeasured_checks
                    FROM guard.checks AS k
                    WHERE
                        k.enabled AND k.check_view IS NOT NULL
                        AND k.check_view <> ALL(guard.shipped_check_views())
                        AND NOT coalesce((
                            SELECT r.duration_ms <= 1000 * extract(EPOCH FROM own_budget)
                            FROM guard.detection_runs AS r
                            -- bounded on the pass_started_at index: within the last day
                            WHERE r.check_id = k.id AND r.pass_started_at > now() - interval '1 day'
                            ORDER BY r.pass_started_at DESC
                            LIMIT 1
                        ), FALSE);
                    own_read := TRUE;
                END IF;
                IF detection_check.id = ANY(unmeasured_checks) THEN
                    status := 'skipped';
                    error := format(
                        'not yet read by a detection pass within check_call''s budget of %s ms:'
                        || ' check_call runs it once one has',
                        round(1000 * extract(EPOCH FROM own_budget))
                    );
                ELSIF detection_check.id = ANY(left_out_checks) THEN
                    status := 'skipped';
                    error := format(
                        'over check_call''s budget (alert check_over_budget): left out of'
                        || ' check_call for %s min from its last run',
                        round(extract(EPOCH FROM own_left_out) / 60)
                    );
                ELSIF check_started - pass_started >= own_budget THEN
                    status := 'skipped';
                    error := format(
                        'check_call''s budget of %s ms for own checks was used up',
                        round(1000 * extract(EPOCH FROM own_budget))
                    );
                END IF;
            END IF;
            IF status = 'skipped' THEN
                opened := 0;
                repeated := 0;
                resolved := 0;
                RETURN NEXT;
                status := 'ok';
                error := NULL;
                CONTINUE;
            END IF;
        END IF;
        -- the session's advisory locks before its first own check (released after the last)
        IF detection_check.own AND own_locks IS NULL THEN
            own_locks := guard.advisory_locks_held();
        END IF;
        BEGIN
            quiet := 0;
            quiet_in_window := 0;
            IF only_call IS NULL THEN
                PERFORM guard.analyze_alerts_if_stale(open_alerts);
                -- The open alerts of this check first, through the index led by check_id, then the
                -- view probed once per open alert's entity (LATERAL, kept apart by OFFSET 0, so the
                -- entity id reaches the view's own index scans as a parameter), each matched to its
                -- alert's fingerprint. Joined in one query, statistics taken before a burst of new
                -- alerts (an estimate of 1 open alert for thousands) made the planner loop over a
                -- sequential scan of calls per alert; filtered with entity_id = ANY(the open ids),
                -- it read the view's whole window once per open alert (9.5 s for 5,400 open alerts
                -- of recent_booking_failure after a burst of 78,000 calls; probed, 0.16 s), and
                -- fingerprint = ANY compared every row with every open fingerprint.
                -- An open alert whose probe finds its row no more is fixed: the same query returns
                -- those alerts' ids, so resolving them reads no open alert again (the statement
                -- that did compared every open alert of the check with the findings: a tenth of a
                -- pass over 70,000 open alerts). They are the alerts open when the view was read:
                -- one a check_call opened since is not among them and cannot look fixed.
                SELECT
                    coalesce(array_agg(a.id), '{}'),
                    coalesce(array_agg(a.entity_id), '{}'),
                    coalesce(array_agg(a.fingerprint), '{}'),
                    coalesce(array_agg(a.last_seen_at), '{}'),
                    coalesce(array_agg(a.observed_at), '{}')
                INTO open_alert_ids, open_ids, open_fingerprints, open_last_seen, open_observed
                FROM guard.alerts AS a
                WHERE a.status = 'open' AND a.check_id = detection_check.id;
                -- What changed, not what is open (docs/jobs.md, "What a pass reads and writes"). A
                -- window of at most detection_full_window_calls calls is read whole, so that a row
                -- of it that starts to offend later (a rolled-back booking) is found. A larger one
                -- (a burst) is read in two parts: its head, the rows observed since the check's
                -- previous pass that ran through, less the overlap (rows it could not see yet: a
                -- writer's transaction still open then, a claim inside its grace period), so that
                -- a new row is found by the next pass as before; and a slice of at most
                -- detection_slice_calls calls of the older rows, from where the previous pass
                -- stopped (its read_to), or from the window's start when there is none. The slice
                -- goes on past the window's start, so that no row of a burst goes unread. Reading
                -- the whole window of a burst in one pass took 22 s for 560,000 calls and 150,000
                -- alerts opened (docs/measurements.md).
                previous_pass := NULL;
                previous_window := NULL;
                previous_read_to := NULL;
                SELECT r.pass_started_at, coalesce(r.window_start, '-infinity'), r.read_to
                INTO previous_pass, previous_window, previous_read_to
                FROM guard.detection_runs AS r
                WHERE r.check_id = detection_check.id
                ORDER BY r.pass_started_at DESC
                LIMIT 1;
                check_since := since;
                slice_to := since;
                head_from := since;
                check_read_to := NULL;
                -- A check that has not caught up with a burst yet goes on with its slices, though
                -- its window is small again: the older rows of the burst are read all the same.
                IF NOT whole_window OR previous_read_to IS NOT NULL THEN
                    IF previous_pass IS NULL OR previous_window > since OR previous_pass - overlap < since THEN
                        -- no pass to go on from: the window's start; the head, the overlap
                        head_from := greatest(since, pass_started - overlap);
                    ELSE
                        head_from := previous_pass - overlap;
                        check_since := coalesce(previous_read_to, head_from);
                    END IF;
                    slice_to := head_from;
                    IF check_since < head_from THEN
                        -- The slice's end: the call after the first detection_slice_calls of it,
                        -- read on the created_at index (once for the checks that start together).
                        IF slice_counted_from IS DISTINCT FROM check_since THEN
                            slice_counted_from := check_since;
                            slice_counted_to := NULL;
                            SELECT guard.app_time(c.created_at, app_zone) INTO slice_counted_to
                            FROM public.calls AS c
                            WHERE c.created_at >= guard.to_app_time(
                                check_since, (SELECT x.created_at FROM public.calls AS x LIMIT 0), app_zone
                            )
                            ORDER BY c.created_at
                            OFFSET (guard.setting('detection_slice_calls') #>> '{}')::integer
                            LIMIT 1;
                        END IF;
                        IF slice_counted_to < head_from THEN
                            slice_to := slice_counted_to;
                            check_read_to := slice_counted_to;
                        END IF;
                    ELSE
                        check_since := head_from;
                    END IF;
                END IF;
                -- Probed every pass: every open alert of a check that has at most
                -- detection_probe_every_alerts (10,000: 0.2 s of probes) of them. Above, only the
                -- open alerts due for a refresh (or silent too long), whose probe writes them
                -- anyway: each is probed at least once in every 30 to 60 minutes, at times spread
                -- by its id; probing every one of 150,000 open alerts took 0.5-1.2 s a check at
                -- every pass after a burst (docs/measurements.md).
                probe_every := cardinality(open_alert_ids) <= probe_every_up_to;
                -- The slice, then the head (for a window read whole: the head only). A check whose
                -- rows are not dated by a row (observed_at now(): the aggregate checks) is not
                -- read in the slice: its condition on now() is a one-time filter.
                EXECUTE format(
                    $query$
                    SELECT coalesce(array_agg(ROW(
                        w.check_id, w.company_id, w.entity_type, w.entity_id, w.call_id, w.severity,
                        w.observed_at, w.detail
                    )::guard.finding), '{}')
                    FROM (
                        SELECT DISTINCT
                            v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id,
                            v.severity, v.observed_at, v.detail
                        FROM (%s) AS v
                    ) AS w
                    $query$,
                    CASE WHEN detection_check.own THEN format(
                        'SELECT s.* FROM guard.read_own_check(%1$L, $1, $2, NULL, NULL) AS s'
                        ' UNION ALL SELECT h.* FROM guard.read_own_check(%1$L, $3, NULL, NULL, NULL) AS h',
                        detection_check.check_view
                    ) ELSE format(
                        'SELECT s.* FROM guard.%1$I AS s WHERE s.observed_at >= $1 AND s.observed_at < $2'
                        ' UNION ALL SELECT h.* FROM guard.%1$I AS h WHERE h.observed_at >= $3',
                        detection_check.check_view
                    ) END
                ) INTO findings USING check_since, slice_to, head_from;
                -- The open alerts the rows read did not find, those due probed (an open alert the
                -- rows read found needs no probe: its row offends). An alert whose probe finds its
                -- row again is written only when due for a refresh or silent too long (the rule of
                -- guard.record_findings, which gets only those): a pass after a burst rewrote every
                -- one of 150,000 open alerts (docs/jobs.md, "What a pass writes"). The others, and
                -- those not probed (their last probe found their row), are counted as repeats
                -- (quiet), with those observed in the window for a rate. NOT IN over the findings
                -- is hashed once (their estimate is small whatever their number).
                EXECUTE format(
                    $query$
                    WITH %2$s unread AS MATERIALIZED (
                        SELECT
                            o.alert_id, o.entity_id, o.fingerprint, o.observed_at,
                            o.last_seen_at < now() - interval '5 minutes' * (6 + o.alert_id %% 7)
                            OR greatest(o.last_seen_at, $6) < now() - $7 AS written
                        FROM unnest($1, $2, $3, $5, $9) AS o (
                            alert_id, entity_id, fingerprint, last_seen_at, observed_at
                        )
                        WHERE o.fingerprint NOT IN (
                            SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id
                            FROM unnest($4) AS f
                        )
                    ),

                    probed AS MATERIALIZED (
                        SELECT
                            o.alert_id, o.written, k.check_id, k.company_id, k.entity_type,
                            k.entity_id, k.call_id, k.severity, k.observed_at, k.detail
                        FROM unread AS o
                        LEFT JOIN LATERAL (
                            SELECT x.* FROM %1$s AS x WHERE x.entity_id = o.entity_id OFFSET 0
                        ) AS k
                            ON k.check_id || ':' || k.entity_type || ':' || k.entity_id = o.fingerprint
                        WHERE $10 OR o.written
                    )

                    SELECT
                        $4 || (
                            SELECT coalesce(array_agg(DISTINCT ROW(
                                p.check_id, p.company_id, p.entity_type, p.entity_id, p.call_id,
                                p.severity, p.observed_at, p.detail
                            )::guard.finding), '{}')
                            FROM probed AS p WHERE p.check_id IS NOT NULL AND p.written
                        ),
                        (
                            SELECT coalesce(array_agg(p.alert_id), '{}') FROM probed AS p
                            WHERE p.check_id IS NULL
                        ),
                        (
                            SELECT count(DISTINCT p.alert_id)::integer FROM probed AS p
                            WHERE p.check_id IS NOT NULL AND NOT p.written
                        ) + (
                            SELECT count(*)::integer FROM unread AS o WHERE NOT ($10 OR o.written)
                        ),
                        (
                            SELECT count(DISTINCT p.alert_id)::integer FROM probed AS p
                            WHERE p.check_id IS NOT NULL AND NOT p.written AND p.observed_at >= $8
                        ) + (
                            SELECT count(*)::integer FROM unread AS o
                            WHERE NOT ($10 OR o.written) AND o.observed_at >= $8
                        )
                    $query$,
                    CASE WHEN detection_check.own THEN 'own_rows'
                        ELSE format('guard.%I', detection_check.check_view) END,
                    -- an own check's view is read once, in its sandbox, for every open alert
                    CASE WHEN detection_check.own THEN format(
                        'own_rows AS MATERIALIZED (SELECT * FROM guard.read_own_check(%L, NULL, NULL, NULL, $2)),',
                        detection_check.check_view
                    ) ELSE '' END
                ) INTO findings, unfound, quiet, quiet_in_window
                USING open_alert_ids, open_ids, open_fingerprints, findings, open_last_seen,
                    previous_pass, silence, since, open_observed, probe_every;
            ELSE
                -- A call's pass runs on the application's path, once per booking: each check's
                -- query is prepared once per session (named by its text, so a new text gets a new
                -- statement) and executed with the call's id. Planned at every EXECUTE, the views
                -- of one check_call cost 4.2 ms of planning; prepared, 0.7 ms (docs/invariants.md).
                call_query := format(
                    $query$
                    SELECT coalesce(array_agg(ROW(
                        v.check_id, v.company_id, v.entity_type, v.entity_id, v.call_id, v.severity,
                        v.observed_at, v.detail
                    )::guard.finding), '{}')
                    FROM %1$s AS v
                    WHERE v.call_id = $1
                    $query$,
                    CASE WHEN detection_check.own
                        THEN format('guard.read_own_check(%L, NULL, NULL, $1, NULL)', detection_check.check_view)
                        ELSE format('guard.%I', detection_check.check_view) END
                );
                call_statement := 'guard_check_call_' || md5(call_query);
                IF NOT EXISTS (SELECT FROM pg_prepared_statements AS p WHERE p.name = call_statement) THEN
                    EXECUTE format('PREPARE %I (bigint) AS %s', call_statement, call_query);
                END IF;
                EXECUTE format('EXECUTE %I(%s)', call_statement, only_call) INTO findings;
            END IF;

            offending := cardinality(findings) + quiet;
            IF only_call IS NOT NULL THEN
                PERFORM set_config('lock_timeout', call_lock_timeout, TRUE);
            END IF;
            SELECT r.opened, r.repeated + quiet, r.superseded INTO opened, repeated, superseded
            FROM guard.record_findings(findings, detection_check.description, silence, TRUE) AS r;

            -- Open alerts of this check in this scope whose row no longer offends: fixed.
            IF only_call IS NULL THEN
                UPDATE guard.alerts AS a
                SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                WHERE a.id = ANY(unfound) AND a.status = 'open';
                GET DIAGNOSTICS resolved = ROW_COUNT;
            ELSE
                -- The call's alert and its appointments', each found by its full key on
                -- alerts_open_by_check_idx, equal on all three columns: no statistics make
                -- another path look cheaper. Written as one condition with ORs, the scan read
                -- every open alert of the check (bitmap scans are off in a pass): 55 ms a
                -- check_call with 70,000 open alerts, against 3 ms for its views. Written as a
                -- semi-join on the ids, or with the appointments' ids as an array (= ANY), the
                -- planner kept only check_id as the index's condition under statistics taken
                -- when no alert was open, and read every open alert of the check, the uncommitted
                -- ones of a pass too: check_call's p99 60-160 ms while a pass opened 27,000
                -- alerts (docs/measurements.md). A call has one appointment or none as a rule.
                -- Two statements, not one in a loop over (entity type, id) pairs: with the type
                -- and id read from arrays, check_call took 4 % more instructions (8.81M against
                -- 8.46M, bench.own_checks).
                UPDATE guard.alerts AS a
                SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                WHERE
                    a.status = 'open'
                    AND a.check_id = detection_check.id
                    AND a.entity_type = 'call'
                    AND a.entity_id = only_call
                    AND a.fingerprint NOT IN (
                        SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id
                        FROM unnest(findings) AS f
                    );
                GET DIAGNOSTICS resolved = ROW_COUNT;
                FOREACH appointment_id IN ARRAY call_appointment_ids LOOP
                    UPDATE guard.alerts AS a
                    SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                    WHERE
                        a.status = 'open'
                        AND a.check_id = detection_check.id
                        AND a.entity_type = 'appointment'
                        AND a.entity_id = appointment_id
                        AND a.fingerprint NOT IN (
                            SELECT f.check_id || ':' || f.entity_type || ':' || f.entity_id
                            FROM unnest(findings) AS f
                        );
                    GET DIAGNOSTICS resolved_appointment = ROW_COUNT;
                    resolved := resolved + resolved_appointment;
                END LOOP;
            END IF;
        EXCEPTION
            WHEN lock_not_available THEN
                -- offending is set once the view was read: then it was the alerts' rows
                IF offending IS NOT NULL AND only_call IS NULL THEN
                    RAISE;
                ELSIF offending IS NOT NULL THEN
                    -- Another transaction holds this call's alerts of this check (the windowed
                    -- pass writing them): it keeps them; its commit is what the alerts show.
                    opened := 0;
                    repeated := 0;
                    resolved := 0;
                ELSE
                    status := 'failed';
                    GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE;
                END IF;
            WHEN query_canceled OR OTHERS THEN
                GET STACKED DIAGNOSTICS error = MESSAGE_TEXT, failed_state = RETURNED_SQLSTATE;
                IF failed_state = '57014' AND NOT guard.statement_timed_out() THEN
                    RAISE;
                END IF;
                status := 'failed';
        END;

        IF status <> 'ok' THEN
            offending := NULL;
            opened := 0;
            repeated := 0;
            resolved := 0;
            IF failed_state = '57014' THEN
                status := 'cut';
                cut_during := detection_check.id;
            END IF;
            -- From check_call: an own check cut by the caller's timeout is over its budget; the
            -- write waits at most check_call_lock_timeout_ms, like the findings', and a failure
            -- already reported within a minute is not written again.
            IF only_call IS NOT NULL THEN
                PERFORM set_config('lock_timeout', call_lock_timeout, TRUE);
            END IF;
            error := guard.report_check_failure(
                detection_check.id, failed_state, error, check_started,
                CASE
                    WHEN only_call IS NULL THEN 'in a detection pass'
                    WHEN status <> 'cut' OR NOT detection_check.own
                        THEN format('in check_call (call %s)', only_call)
                END,
                jsonb_build_object(
                    'in', CASE WHEN only_call IS NULL THEN 'pass' ELSE 'check_call' END,
                    'call_id', only_call
                ),
                CASE WHEN only_call IS NOT NULL THEN interval '1 minute' END
            );
            IF only_call IS NOT NULL AND status = 'cut' AND detection_check.own THEN
                BEGIN
                    PERFORM guard.open_check_alert(
                        'check_over_budget', detection_check.id,
                        format(
                            'own check %s was cut in check_call (call %s): %s; check_call leaves it'
                            || ' out for %s min',
                            detection_check.id, only_call, error,
                            round(extract(EPOCH FROM own_left_out) / 60)
                        ),
                        jsonb_build_object(
                            'in', 'check_call', 'call_id', only_call, 'error', error,
                            'budget_ms', round(1000 * extract(EPOCH FROM own_budget))
                        )
                    );
                EXCEPTION WHEN lock_not_available THEN
                    -- another session is writing the same alert: it reports the failure
                    NULL;
                END;
            END IF;
            IF only_call IS NOT NULL THEN
                PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
            END IF;
            RETURN NEXT;
            status := 'ok';
            error := NULL;
            CONTINUE;
        END IF;

        IF only_call IS NOT NULL THEN
            PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
            IF detection_check.own AND clock_timestamp() - check_started > own_budget THEN
                -- Too slow for the application's path: left out of check_call for a while.
                BEGIN
                    PERFORM set_config('lock_timeout', call_lock_timeout, TRUE);
                    PERFORM guard.open_check_alert(
                        'check_over_budget', detection_check.id,
                        format(
                            'own check %s took %s ms in check_call (call %s), over its budget of'
                            || ' %s ms; check_call leaves it out for %s min',
                            detection_check.id,
                            round(1000 * extract(EPOCH FROM clock_timestamp() - check_started)),
                            only_call, round(1000 * extract(EPOCH FROM own_budget)),
                            round(extract(EPOCH FROM own_left_out) / 60)
                        ),
                        jsonb_build_object(
                            'in', 'check_call', 'call_id', only_call,
                            'ms', round(1000 * extract(EPOCH FROM clock_timestamp() - check_started)),
                            'budget_ms', round(1000 * extract(EPOCH FROM own_budget))
                        )
                    );
                EXCEPTION WHEN lock_not_available THEN
                    NULL;
                END;
                PERFORM set_config('lock_timeout', caller_lock_timeout, TRUE);
            ELSIF detection_check.own AND detection_check.id = ANY(retried_checks) THEN
                -- Tried again after its time out, and within the budget now.
                UPDATE guard.alerts AS a
                SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
                WHERE a.status = 'open' AND a.fingerprint = 'check_over_budget:check:' || detection_check.id;
            END IF;
        ELSE
            checks_run := checks_run + 1;
            -- Run through: its failure (in a pass or a check_call) is over.
            UPDATE guard.alerts AS a
            SET status = 'resolved', resolved_at = now(), resolution = 'fixed'
            WHERE
                a.status = 'open'
                AND a.fingerprint = 'check_failed:check:' || detection_check.id
                AND a.details ->> 'in' IS DISTINCT FROM 'sweep';
            open_alerts := open_alerts + opened - resolved - superseded;
            -- The DBA's thresholds judge the whole pass (guard.judge_check_threshold). A count
            -- is of every offending row the pass found; a rate is of the rows observed in the
            -- window (not the older ones whose open alerts were re-checked) per 100 calls
            -- created in it, counted once per pass on its index; a window without calls counts
            -- as one call, so that rows offending then still fail and none pass.
            check_outcome := NULL;
            IF detection_check.has_thresholds THEN
                IF detection_check.threshold_unit = 'rate_pct' AND window_calls IS NULL THEN
                    SELECT count(*) INTO window_calls FROM public.calls AS c
                    WHERE c.created_at >= guard.to_app_time(
                since, (SELECT x.created_at FROM public.calls AS x LIMIT 0), app_zone
            );
                END IF;
                check_outcome := guard.judge_check_threshold(
                    detection_check.id,
                    CASE detection_check.threshold_unit
                        WHEN 'rate_pct' THEN round(
                            100.0
                            * (
                                quiet_in_window
                                + (SELECT count(*) FROM unnest(findings) AS f WHERE f.observed_at >= since)
                            )
                            / greatest(window_calls, 1),
                            2
                        )
                        ELSE offending
                    END
                );
            END IF;
            -- The history BI charts (guard.detection_passes); not for check_call's one call.
            INSERT INTO guard.detection_runs (
                pass_started_at, window_start, check_id, rule_id, duration_ms,
                offending, opened, repeated, resolved, outcome, read_to
            ) VALUES (
                -- '-infinity' (the whole history) is stored as NULL: BI clients cannot read it
                pass_started, nullif(since, '-infinity'), detection_check.id, detection_check.rule_id,
                1000 * extract(EPOCH FROM clock_timestamp() - check_started),
                offending, opened, repeated, resolved, check_outcome, check_read_to
            );
        END IF;
        RETURN NEXT;
    END LOOP;
    IF own_locks IS NOT NULL THEN
        PERFORM guard.release_advisory_locks_since(own_locks);
    END IF;
    IF only_call IS NULL AND cut_during IS NOT NULL THEN
        -- For guard.run_job: the pass ran out of time, so the detect job's run is a failure
        -- (job_failed), though what ran before the cut is kept.
        PERFORM set_config(
            'booking_guard.checks_cut',
            format(
                'check %s was cut; the %s checks run before it are kept, %s after it skipped',
                cut_during, checks_run, checks_skipped
            ),
            TRUE
        );
    END IF;
    IF only_call IS NULL THEN
        -- A check_failed or check_over_budget alert about a check detection no longer runs
        -- (disabled, its view unregistered, deleted) would stay open for ever: closed by hand.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'manual'
        WHERE
            a.status = 'open'
            AND a.check_id IN ('check_failed', 'check_over_budget')
            AND NOT EXISTS (
                SELECT FROM guard.checks AS k
                WHERE
                    a.fingerprint = a.check_id || ':check:' || k.id
                    AND k.enabled
                    AND k.check_view IS NOT NULL
            );
        -- A threshold alert about a check that is no longer judged (its thresholds removed, the
        -- check disabled or gone) would stay open for ever: the DBA's change closes it.
        UPDATE guard.alerts AS a
        SET status = 'resolved', resolved_at = now(), resolution = 'manual'
        WHERE
            a.status = 'open'
            AND a.check_id = 'check_threshold'
            AND NOT EXISTS (
                SELECT FROM guard.checks AS k
                WHERE
                    a.fingerprint = 'check_threshold:check:' || k.id
                    AND k.enabled
                    AND k.check_view IS NOT NULL
                    AND (k.warn_above IS NOT NULL OR k.error_above IS NOT NULL)
            );
    END IF;
END;
$$;
