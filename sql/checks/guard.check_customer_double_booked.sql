-- I10, check customer_double_booked of rule I10_double_booking: one customer booked twice at
-- overlapping times, on the same call or on different ones. An appointment's time is
-- [starts_at, ends_at), or the instant starts_at when it has no end: touching appointments
-- (10:00-10:30 and 10:30-11:00) do not overlap, two at the same start do. The later of two (by id)
-- is the row, naming the earlier one. Cancelled and soft-deleted appointments do not count,
-- nor appointments without a customer or a start.
CREATE OR REPLACE VIEW guard.check_customer_double_booked WITH (security_invoker = TRUE) AS
SELECT
    'customer_double_booked'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    a.call_id,
    'high'::text AS severity,
    guard.app_time(a.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object(
        'customer_id', a.customer_id,
        'starts_at', a.starts_at,
        'ends_at', a.ends_at,
        'overlaps_appointment_id', o.id,
        'overlaps_call_id', o.call_id
    ) AS detail,
    'I10_double_booking'::text AS rule_id
FROM public.appointments AS a
CROSS JOIN
    LATERAL (
        SELECT
            b.id,
            b.call_id
        FROM public.appointments AS b
        WHERE
            b.customer_id = a.customer_id
            AND b.company_id = a.company_id
            AND guard.is_active_appointment(b.status, b.deleted_at)
            AND b.id < a.id
            AND (
                b.starts_at = a.starts_at
                OR (
                    b.starts_at < coalesce(a.ends_at, a.starts_at)
                    AND a.starts_at < coalesce(b.ends_at, b.starts_at)
                )
            )
        ORDER BY b.id
        LIMIT 1
    ) AS o
WHERE
    a.customer_id IS NOT NULL
    AND a.starts_at IS NOT NULL
    AND guard.is_active_appointment(a.status, a.deleted_at);
