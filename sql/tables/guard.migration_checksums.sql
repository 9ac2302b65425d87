-- sha256 of each applied migration file.

CREATE TABLE guard.migration_checksums (
    migration_id text PRIMARY KEY,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);

COMMENT ON TABLE guard.migration_checksums IS 'sha256 of each applied migration file, to detect edited migrations.';
