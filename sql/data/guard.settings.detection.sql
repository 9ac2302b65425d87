-- Settings of detection.
INSERT INTO guard.settings (key, value, value_type, description) VALUES
(
    'detection_window_minutes', '60', 'integer',
    'A detection pass looks at rows created this recently (plus every open alert).'
);
