DROP TRIGGER rules_touch_updated_at ON guard.rules;

DROP TRIGGER settings_touch_updated_at ON guard.settings;

DROP FUNCTION guard.touch_updated_at();

DROP FUNCTION guard.setting(text);

DROP TABLE guard.correction_audit;

DROP TABLE guard.daily_reports;

DROP TABLE guard.validation_metrics;

DROP TABLE guard.breaker_events;

DROP TABLE guard.breaker_state;

DROP TABLE guard.review_items;

DROP TABLE guard.alerts;

DROP TABLE guard.rules;

DROP TABLE guard.settings;
