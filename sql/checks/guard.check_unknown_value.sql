-- I8, check unknown_value of rule I8_known_values: a value outside the known set (dbt's
-- accepted_values) in a column Booking Guard decides from: an appointment's status and source, a
-- call's session_outcome. Why each matters: guard.is_active_appointment reads every status but
-- 'cancelled' as active, so a misspelt 'canceled' keeps the call booked; the orphan check keys
-- on source 'retell_webhook' (it folds case and blanks, but 'retell-webhook' escapes it); the
-- call-end validation and the report read the outcome. Detected, not refused: the application's vocabulary is its own and
-- grows with it (settings known_appointment_statuses, known_appointment_sources,
-- known_session_outcomes, comma-separated), and a refused write would lose the booking. NULL is
-- not checked here: status is NOT NULL, a missing outcome is the call-end validation's question.
-- One row per entity, the detail naming every unknown column (one alert per appointment), with
-- phone numbers masked (a free-text value is the application's; reporting reads this view). The
-- ::text casts keep the view's text one on an adopted database, whose columns may be varchar.
-- The known sets are one-time sub-selects, not a join: joined, the planner priced the filter at
-- ten times its cost, and a reader with JIT on (a reporting login, dbt) compiled it for 4 s of a
-- 5 s read of a million calls (docs/measurements.md).
CREATE OR REPLACE VIEW guard.check_unknown_value WITH (security_invoker = TRUE) AS
WITH known AS (
    SELECT
        (
            SELECT string_to_array(s.value #>> '{}', ',') FROM guard.settings AS s
            WHERE s.key = 'known_appointment_statuses'
        ) AS statuses,
        (
            SELECT string_to_array(s.value #>> '{}', ',') FROM guard.settings AS s
            WHERE s.key = 'known_appointment_sources'
        ) AS sources,
        (
            SELECT string_to_array(s.value #>> '{}', ',') FROM guard.settings AS s
            WHERE s.key = 'known_session_outcomes'
        ) AS outcomes
)

SELECT
    'unknown_value'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'high'::text AS severity,
    guard.app_time(a.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_strip_nulls(jsonb_build_object(
        'status',
        CASE
            WHEN NOT a.status = any((SELECT k.statuses FROM known AS k)::text[])
                THEN guard.mask_phone_numbers(a.status::text)
        END,
        'source',
        CASE
            WHEN NOT a.source = any((SELECT k.sources FROM known AS k)::text[])
                THEN guard.mask_phone_numbers(a.source::text)
        END
    )) AS detail,
    'I8_known_values'::text AS rule_id
FROM public.appointments AS a
WHERE
    NOT a.status = any((SELECT k.statuses FROM known AS k)::text[])
    OR NOT a.source = any((SELECT k.sources FROM known AS k)::text[])
UNION ALL
SELECT
    'unknown_value'::text AS check_id,
    c.company_id,
    'call'::text AS entity_type,
    c.id AS entity_id,
    c.id AS call_id,
    'high'::text AS severity,
    guard.app_time(c.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object(
        'session_outcome', guard.mask_phone_numbers(c.session_outcome::text)
    ) AS detail,
    'I8_known_values'::text AS rule_id
FROM public.calls AS c
WHERE NOT c.session_outcome = any((SELECT k.outcomes FROM known AS k)::text[]);
