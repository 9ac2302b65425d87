-- guard.reconcile_call_batch on an adopted database's rows with a complete customer link (a
-- confidence within 0-100 is decidable, not a reason to leave a row alone): a missing direction
-- is corrected and flags that deny an active appointment are derived again; a row with a
-- direction no rule can decide is left whole for a person (its flags too: an UPDATE of it would
-- fail on the NOT VALID direction CHECK) and counted as needs_review.
BEGIN;
SELECT plan(3);

INSERT INTO companies (id, name) VALUES (1051, 'A');
INSERT INTO customers (id, company_id, name) VALUES (1051, 1051, 'Ann');
SELECT pgtap_setup.drop_calls_checks('guard_calls_direction_check');
SET LOCAL session_replication_role = replica;
-- 10510: no direction; 10511 (inbound) and 10513 (outbound): flags that deny their
-- appointment; 10512: such flags and a direction nobody can decide
INSERT INTO calls (
    id, company_id, retell_call_id, direction, customer_id, customer_link_status,
    customer_linked_at, customer_link_method, customer_link_confidence, appointment_made,
    appointment_link_status, session_outcome
) VALUES
(10510, 1051, 'r10510', NULL, 1051, 'linked', now(), 'phone_match', 50, FALSE, NULL, 'information_only'),
(10511, 1051, 'r10511', 'inbound', 1051, 'linked', now(), 'phone_match', 50, FALSE, NULL, 'information_only'),
(10512, 1051, 'r10512', 'sideways', 1051, 'linked', now(), 'phone_match', 50, FALSE, NULL, 'information_only'),
(10513, 1051, 'r10513', 'outbound', 1051, 'linked', now(), 'phone_match', 50, FALSE, NULL, 'information_only');
INSERT INTO appointments (id, company_id, call_id, calcom_v2_booking_id, status) VALUES
(10511, 1051, 10511, 'u10511', 'scheduled'),
(10512, 1051, 10512, 'u10512', 'scheduled'),
(10513, 1051, 10513, 'u10513', 'scheduled');
SET LOCAL session_replication_role = origin;
SELECT pgtap_setup.calls_checks_not_valid();

SELECT results_eq(
    $$SELECT rule_name, corrected FROM guard.reconcile_call_batch(10510, 10514)$$,
    $$VALUES ('I1_call_direction', 1), ('I2_customer_link', 0), ('I3_appointment_flags', 2),
             ('needs_review', 1)$$,
    'reconcile_call_batch: rows with a decidable link are corrected; the undecidable one is counted'
);
SELECT results_eq(
    $$SELECT id, direction, appointment_made FROM calls WHERE company_id = 1051 ORDER BY id$$,
    $$VALUES (10510::bigint, 'inbound', FALSE), (10511, 'inbound', TRUE),
             (10512, 'sideways', FALSE), (10513, 'outbound', TRUE)$$,
    'reconcile_call_batch: the direction and the flags corrected; the undecidable row left whole'
);
SELECT results_eq(
    $$SELECT rule_id, entity_id FROM guard.correction_audit WHERE company_id = 1051
      ORDER BY entity_id, rule_id$$,
    $$VALUES ('I1_call_direction', 10510::bigint), ('I3_appointment_flags', 10511),
             ('I3_appointment_flags', 10513)$$,
    'reconcile_call_batch: each correction audited, nothing of the undecidable row'
);

SELECT * FROM finish();
ROLLBACK;
