-- I6, check orphaned_voice_appointment of rule I6_voice_appointment_call: an active appointment
-- made by the voice agent (source retell_webhook, whatever its case and surrounding blanks: an
-- application that writes 'Retell_Webhook' still made it by voice; unknown_value reports the
-- spelling) that is linked to no call once the grace period is over. The detail counts the calls carrying its booking uid, in its company and in others: what
-- reconcile needs to decide between linking it and queueing it for a person.
CREATE OR REPLACE VIEW guard.check_orphaned_voice_appointment WITH (security_invoker = TRUE) AS
SELECT
    'orphaned_voice_appointment'::text AS check_id,
    a.company_id,
    'appointment'::text AS entity_type,
    a.id AS entity_id,
    NULL::bigint AS call_id,
    'high'::text AS severity,
    guard.app_time(a.created_at, (SELECT guard.app_time_zone())) AS observed_at,
    jsonb_build_object(
        'booking_uid', a.calcom_v2_booking_id,
        'calls_with_uid_same_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id = a.company_id
        ),
        'calls_with_uid_other_company', (
            SELECT count(*)
            FROM public.calls AS c
            WHERE c.booking_id = a.calcom_v2_booking_id AND c.company_id <> a.company_id
        )
    ) AS detail,
    'I6_voice_appointment_call'::text AS rule_id
FROM public.appointments AS a
WHERE
    lower(btrim(a.source)) = 'retell_webhook'
    AND a.call_id IS NULL
    AND guard.is_active_appointment(a.status, a.deleted_at)
    -- a time unknown (an adopted row): long past any grace period, not inside it
    AND coalesce(guard.app_time(a.created_at, (SELECT guard.app_time_zone())) < now() - make_interval(
        secs => (
            SELECT (s.value #>> '{}')::integer FROM guard.settings AS s
            WHERE s.key = 'grace_period_seconds'
        )
    ), TRUE);
