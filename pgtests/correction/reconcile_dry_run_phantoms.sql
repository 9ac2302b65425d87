-- guard.reconcile's dry run and phantom bookings: a dry run links nothing, so it leaves out of
-- rollback_phantom_booking exactly the calls a link would recover, and counts every other phantom
-- (several of them, so that leaving out "every call but the recoverable one" would show).
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1121, 'phantoms');
SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_link_status, session_outcome,
    appointment_made, appointment_link_status, booking_id, created_at, updated_at
)
SELECT
    g,
    1121,
    'p' || g,
    'inbound',
    'unlinked',
    'appointment_booked',
    TRUE,
    'linked',
    'uid-' || g,
    now() - interval '1 hour',
    now() - interval '1 hour'
FROM generate_series(11201, 11204) AS g;
-- 11201's appointment exists, not linked to it: a link recovers the call.
INSERT INTO appointments (id, company_id, call_id, source, calcom_v2_booking_id, created_at)
VALUES (11201, 1121, NULL, 'retell_webhook', 'uid-11201', now() - interval '1 hour');
SET LOCAL session_replication_role = origin;

SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{link_orphan_appointment,rollback_phantom_booking}', dry_run => TRUE)$$,
    $$VALUES ('link_orphan_appointment', 1), ('rollback_phantom_booking', 3)$$,
    'a dry run counts the link, and the three phantoms no link recovers'
);
SELECT results_eq(
    $$SELECT * FROM pgtap_setup.reconciled('{link_orphan_appointment,rollback_phantom_booking}')$$,
    $$VALUES ('link_orphan_appointment', 1), ('rollback_phantom_booking', 3)$$,
    'the run does what the dry run counted'
);
SELECT results_eq(
    $$SELECT id, session_outcome FROM calls ORDER BY id$$,
    $$VALUES (11201::bigint, 'appointment_booked'), (11202::bigint, 'creation_failed'),
             (11203::bigint, 'creation_failed'), (11204::bigint, 'creation_failed')$$,
    'the linked call stays booked, the other three are rolled back'
);

SELECT * FROM finish();
ROLLBACK;
