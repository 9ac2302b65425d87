-- Typed settings that SQL and Python both read (guard.setting(key) in SQL).

CREATE TABLE guard.settings (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    value_type text NOT NULL CHECK (value_type IN ('integer', 'number', 'boolean', 'text')),
    description text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settings_value_matches_type CHECK (
        CASE value_type
            WHEN 'integer' THEN jsonb_typeof(value) = 'number' AND value::text ~ '^-?[0-9]+$'
            WHEN 'number' THEN jsonb_typeof(value) = 'number'
            WHEN 'boolean' THEN jsonb_typeof(value) = 'boolean'
            ELSE jsonb_typeof(value) = 'string'
        END
    )
);
