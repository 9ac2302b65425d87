-- Booking Guard's own schema.

CREATE SCHEMA guard;

COMMENT ON SCHEMA guard IS 'Booking Guard: settings, rules, alerts, review queue, breaker state, audit.';
