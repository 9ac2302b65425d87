DROP TRIGGER guard_appointments_sync_delete ON public.appointments;

DROP TRIGGER guard_appointments_sync_update ON public.appointments;

DROP TRIGGER guard_appointments_sync_insert ON public.appointments;

DROP TRIGGER guard_calls_correct_flags_update ON public.calls;

DROP TRIGGER guard_calls_correct_flags_insert ON public.calls;

DROP TRIGGER guard_calls_normalise_customer_link ON public.calls;

DROP TRIGGER guard_calls_normalise_direction ON public.calls;

DROP FUNCTION guard.reconcile_call_batch(bigint, bigint);

DROP FUNCTION guard.refresh_rule_stages();

DROP FUNCTION guard.correct_flags_after_call_update();

DROP FUNCTION guard.correct_flags_after_call_insert();

DROP FUNCTION guard.sync_flags_after_appointment_delete();

DROP FUNCTION guard.sync_flags_after_appointment_update();

DROP FUNCTION guard.sync_flags_after_appointment_insert();

DROP FUNCTION guard.correct_call_writes(bigint[], text);

DROP FUNCTION guard.refresh_call_flags(bigint[], bigint[], text, boolean);

DROP FUNCTION guard.normalise_customer_link();

DROP FUNCTION guard.normalise_call_direction();

ALTER TABLE public.calls ALTER COLUMN direction DROP NOT NULL;

ALTER TABLE public.appointments DROP CONSTRAINT guard_appointments_call_company_fkey;

ALTER TABLE public.appointments DROP CONSTRAINT guard_appointments_company_required;

ALTER TABLE public.calls DROP CONSTRAINT guard_calls_link_confidence_range;

ALTER TABLE public.calls DROP CONSTRAINT guard_calls_customer_link_check;

ALTER TABLE public.calls DROP CONSTRAINT guard_calls_direction_check;

DELETE FROM guard.rules
WHERE id IN (
    'I1_call_direction', 'I2_customer_link', 'I3_appointment_flags', 'I4_booked_outcome',
    'I5_tenant_link', 'I6_voice_appointment_call', 'I7_booking_failures'
);
