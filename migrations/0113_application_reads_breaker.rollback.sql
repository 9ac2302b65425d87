-- Rollback of 0113_application_reads_breaker: the application no longer reads its circuits.

DO $$
BEGIN
    EXECUTE format(
        'REVOKE SELECT ON TABLE guard.breaker_state, guard.breaker_events FROM %I',
        guard.role('application')
    );
END
$$;
