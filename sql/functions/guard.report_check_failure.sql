-- What the detection functions (guard.run_checks, guard.sweep_checks, guard.run_checks_between,
-- guard.recheck_alerts_between) do with a check that did not run through, so that each reports
-- it alike: returns the error its row carries (a cut's says how long the check ran under which
-- statement_timeout; at most 500 characters, phone numbers masked) and raises the check_failed
-- alert that names the check, where it ran (scope: "in a detection pass", "in the sweep", ...)
-- and why, with details (the caller's own, such as "in", and status, error, sqlstate; one alert
-- per check, bumped by repeats: guard.open_check_alert, quiet as there). failed_state is the
-- error's SQLSTATE: 57014 is a cut (the caller passed any other cancel on). A NULL scope raises
-- nothing: check_call reports an own check's cut as check_over_budget itself.
-- A caller that bounds its lock waits (check_call: check_call_lock_timeout_ms) keeps them for
-- the write; where another session holds the alert's row, it is writing the same failure, and
-- the error is returned all the same.
CREATE OR REPLACE FUNCTION guard.report_check_failure(
    failed_check text,
    failed_state text,
    failure text,
    check_started timestamptz,
    scope text,
    details jsonb,
    quiet interval DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    status text := CASE failed_state WHEN '57014' THEN 'cut' ELSE 'failed' END;
    error text := guard.mask_phone_numbers(left(
        CASE status
            WHEN 'cut' THEN format(
                'cut after %s ms by the statement timeout (%s)',
                round(1000 * extract(EPOCH FROM clock_timestamp() - check_started)),
                current_setting('statement_timeout')
            )
            ELSE failure
        END,
        500
    ));
BEGIN
    IF scope IS NOT NULL THEN
        BEGIN
            PERFORM guard.open_check_alert(
                'check_failed', failed_check,
                format(
                    'check %s %s %s: %s', failed_check,
                    CASE status WHEN 'cut' THEN 'was cut' ELSE 'failed' END, scope, error
                ),
                details || jsonb_build_object('status', status, 'error', error, 'sqlstate', failed_state),
                quiet
            );
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END IF;
    RETURN error;
END;
$$;
