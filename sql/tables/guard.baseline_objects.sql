-- Which booking tables and columns Booking Guard created or adopted.

CREATE TABLE guard.baseline_objects (
    table_name text NOT NULL,
    column_name text NOT NULL DEFAULT '',
    created_by_guard boolean NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, column_name)
);

COMMENT ON TABLE guard.baseline_objects IS
'Booking tables (column_name = '''') and columns seen by the baseline migration: created by Booking Guard, or adopted from the application.';
