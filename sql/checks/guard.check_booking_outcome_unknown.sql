-- I7, check booking_outcome_unknown of rule I7_booking_failures: a booking attempt that called the
-- calendar and never finished. Still calling after booking_attempt_timeout_seconds (the process
-- died, the database went away between the calendar's answer and the recording), or already marked
-- unknown by reconcile and not yet settled. The calendar may hold a booking the database does not
-- know; the idempotency key lets a person (or recover_attempts) ask the calendar.
CREATE OR REPLACE VIEW guard.check_booking_outcome_unknown WITH (security_invoker = TRUE) AS
SELECT
    'booking_outcome_unknown'::text AS check_id,
    b.company_id,
    'booking_attempt'::text AS entity_type,
    b.id AS entity_id,
    b.call_id,
    'critical'::text AS severity,
    b.created_at AS observed_at,
    jsonb_build_object(
        'idempotency_key', b.idempotency_key,
        'service_id', b.service_id,
        'state', b.state,
        'started_by', b.started_by,
        'calling_seconds', floor(extract(EPOCH FROM now() - b.created_at))
    ) AS detail,
    'I7_booking_failures'::text AS rule_id
FROM guard.booking_attempts AS b
WHERE
    b.state = 'unknown'
    OR (
        b.state = 'calling'
        AND b.created_at < now() - make_interval(
            secs => (
                SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
                WHERE s.key = 'booking_attempt_timeout_seconds'
            )
        )
    );
