-- I7, check recent_booking_failure of rule I7_booking_failures: a booking that failed within the
-- failure window (failure_window_minutes). Failures are not wrong data; they must not go unnoticed.
-- A failure is placed in time by when it failed: a call whose booking attempt failed
-- (guard.booking_attempts) by the end of its last failed attempt, so that a late failure of an
-- older call (a retried booking, one settled by recover_attempts) is found; any other failed
-- call by its creation, the only time the database has for a flag the application wrote.
-- The failure reason is free text the application writes: phone numbers in it are masked, and
-- the reporting role may not read it raw in public.calls. So this view, unlike the other check
-- views, runs with its owner's rights: a reader who is the owner role or a member of it
-- (detection, the jobs, an admin) sees every company; anyone else the companies bound to it
-- (guard.visible_companies(), as guard.calls_report filters). security_barrier keeps a reader's
-- own conditions from running before that filter.
-- The window's start and the reader's companies are MATERIALIZED CTEs so that calls is joined
-- on plain columns and read through its index on created_at: a condition that holds a
-- sub-select (or computes with another table's columns) is not pushed into that index scan,
-- and calls was read whole (bench/tenant_rls.py).
CREATE OR REPLACE VIEW guard.check_recent_booking_failure WITH (security_barrier = TRUE) AS
WITH failure_window AS MATERIALIZED (
    SELECT
        now() - make_interval(mins => (s.value #>> '{}')::integer) AS since,
        -- the same instant in the type of calls.created_at (guard.to_app_time)
        guard.to_app_time(
            now() - make_interval(mins => (s.value #>> '{}')::integer),
            (SELECT x.created_at FROM public.calls AS x LIMIT 0),  -- noqa: AM09
            (SELECT guard.app_time_zone())
        ) AS calls_since
    FROM guard.settings AS s
    WHERE s.key = 'failure_window_minutes'
),

reader AS MATERIALIZED (
    SELECT
        pg_has_role(current_user, r.role_name, 'USAGE') AS sees_every_company,
        guard.visible_companies() AS companies
    FROM guard.role_names AS r
    WHERE r.kind = 'owner'
)

SELECT
    'recent_booking_failure'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    f.observed_at,
    jsonb_build_object(
        'session_outcome', guard.mask_phone_numbers(c.session_outcome),
        'booking_failure_reason', guard.mask_phone_numbers(c.booking_failure_reason),
        'requires_manual_processing', c.requires_manual_processing
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM (
    -- a call without a failed attempt, by its creation
    SELECT
        created.id AS call_id,
        guard.app_time(created.created_at, (SELECT guard.app_time_zone())) AS observed_at
    FROM failure_window AS w
    INNER JOIN public.calls AS created ON w.calls_since <= created.created_at
    WHERE
        NOT EXISTS (
            SELECT FROM guard.booking_attempts AS ba
            WHERE ba.call_id = created.id AND ba.state = 'failed'
        )
    UNION ALL
    -- a call with failed attempts, by the end of its last one (one row per call)
    SELECT
        ba.call_id,
        ba.finished_at AS observed_at
    FROM failure_window AS w
    INNER JOIN guard.booking_attempts AS ba ON w.since <= ba.finished_at AND ba.state = 'failed'
    WHERE NOT EXISTS (
        SELECT FROM guard.booking_attempts AS later
        WHERE
            later.call_id = ba.call_id
            AND later.state = 'failed'
            AND (later.finished_at, later.id) > (ba.finished_at, ba.id)
    )
) AS f
INNER JOIN public.calls AS c ON f.call_id = c.id
CROSS JOIN reader AS r
WHERE
    (c.session_outcome = 'creation_failed' OR c.booking_failed)
    AND (r.sees_every_company OR c.company_id = ANY(r.companies));  -- noqa: CP03
