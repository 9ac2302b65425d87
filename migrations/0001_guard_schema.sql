-- Booking Guard's own schema and the bookkeeping every later migration relies on:
-- content checksums of applied migrations (yoyo only hashes a migration's name) and the record of
-- which booking tables and columns Booking Guard created, so that a rollback on an adopted
-- (legacy) database removes only what Booking Guard added.

CREATE SCHEMA IF NOT EXISTS guard;

COMMENT ON SCHEMA guard IS 'Booking Guard: settings, rules, alerts, review queue, breaker state, audit.';

CREATE TABLE guard.migration_checksums (
    migration_id text PRIMARY KEY,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);

COMMENT ON TABLE guard.migration_checksums IS 'sha256 of each applied migration file, to detect edited migrations.';

CREATE TABLE guard.baseline_objects (
    table_name text NOT NULL,
    column_name text NOT NULL DEFAULT '',
    created_by_guard boolean NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, column_name)
);

COMMENT ON TABLE guard.baseline_objects IS
'Booking tables (column_name = '''') and columns seen by the baseline migration: created by Booking Guard, or adopted from the application.';
