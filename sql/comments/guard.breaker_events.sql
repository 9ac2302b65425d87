-- What BI tools show for guard.breaker_events (docs/bi-columns.md is generated from these
-- comments).
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
