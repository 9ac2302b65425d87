-- I9, the rows of one activity monitor's check view: a company whose calls or appointments
-- (stream) stopped (none in the window: calls_stopped, bookings_stopped) or dropped below
-- monitor_drop_ratio times the usual number without stopping (call_volume_drop,
-- booking_volume_drop), counted by guard.activity_against_usual. The four views differ only in
-- their check, stream and which of the two they find; this is written once for them.
-- Severity and rule are the check's row in guard.checks, read here, so what an alert says is
-- what the registry says. observed_at is the pass that saw it (silence has no row to date it
-- by), so its detection latency reads 0.
-- LANGUAGE sql, STABLE, one SELECT: inlined into the check view with guard.activity_against_usual,
-- so that the constant stream still prunes the other table's branch.
CREATE OR REPLACE FUNCTION guard.activity_check(monitor_check text, stream text, stopped boolean)
RETURNS TABLE (
    check_id text,
    company_id bigint,
    entity_type text,
    entity_id bigint,
    call_id bigint,
    severity text,
    observed_at timestamptz,
    detail jsonb,
    rule_id text
)
LANGUAGE sql
STABLE
AS $$
    SELECT
        k.id,
        u.company_id,
        'company'::text,
        u.company_id,
        NULL::bigint,
        k.severity,
        now(),
        jsonb_build_object(
            'recent', u.recent,
            'usual', u.usual,
            'last_at', u.last_at,
            'window_minutes', guard.setting('monitor_window_minutes')::integer
        ),
        k.rule_id
    FROM guard.activity_against_usual(activity_check.stream) AS u
    INNER JOIN guard.checks AS k ON k.id = activity_check.monitor_check
    WHERE
        CASE
            WHEN activity_check.stopped THEN u.recent = 0
            ELSE u.recent > 0 AND u.recent < guard.setting('monitor_drop_ratio')::numeric * u.usual
        END;
$$;
