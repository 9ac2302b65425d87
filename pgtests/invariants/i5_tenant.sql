-- I5: an appointment and its call belong to the same company; no write can link across tenants.
BEGIN;
SELECT plan(12);

INSERT INTO companies (id, name) VALUES (1, 'A'), (2, 'B');
ALTER TABLE calls ALTER COLUMN id RESTART WITH 10000;
ALTER TABLE appointments ALTER COLUMN id RESTART WITH 10000;
INSERT INTO calls (id, company_id, retell_call_id) VALUES (1, 1, 'a1'), (2, 2, 'b1');

SELECT throws_ok(
    $$INSERT INTO appointments (company_id, call_id) VALUES (1, 2)$$,
    '23503',
    NULL,
    'an appointment of company 1 on a call of company 2 is refused'
);
SELECT throws_ok(
    $$INSERT INTO appointments (company_id, call_id) SELECT 1, g FROM generate_series(1, 2) AS g$$,
    '23503',
    NULL,
    'a bulk insert with one cross-tenant row is refused whole'
);
INSERT INTO appointments (id, company_id, call_id) VALUES (1, 1, 1);
SELECT throws_ok(
    $$UPDATE appointments SET call_id = 2 WHERE id = 1$$,
    '23503',
    NULL,
    'moving an appointment to another company''s call is refused'
);
SELECT throws_ok(
    $$UPDATE calls SET company_id = 2 WHERE id = 1$$,
    '23503',
    NULL,
    'moving a call with appointments to another company is refused'
);
SELECT lives_ok(
    $$INSERT INTO appointments (company_id, call_id, source) VALUES (2, NULL, 'manual')$$,
    'a manual appointment without a call is fine'
);
SELECT throws_ok(
    $$INSERT INTO appointments (company_id, call_id) VALUES (NULL, 1)$$,
    '23502',
    NULL,
    'an appointment without a company is refused'
);
SELECT fk_ok(
    'public', 'appointments', ARRAY['call_id', 'company_id'],
    'public', 'calls', ARRAY['id', 'company_id'],
    'the composite foreign key exists'
);
SELECT ok(
    (
        SELECT bool_and(convalidated) FROM pg_constraint
        WHERE conname IN ('guard_appointments_call_company_fkey', 'guard_appointments_company_required')
    ),
    'the I5 constraints are validated'
);

-- A session pinned to one tenant may not correct another tenant's calls through the definer
-- function (it writes their audit and alerts): refused before any row is locked or changed.
INSERT INTO calls (id, company_id, retell_call_id, appointment_made)
VALUES (3, 2, 'b-claims', FALSE);
SET LOCAL session_replication_role = replica;
UPDATE calls SET appointment_made = TRUE
WHERE id = 3;
SET LOCAL session_replication_role = origin;
SELECT guard.pin_company(1);
SELECT throws_ok(
    $$SELECT guard.refresh_call_flags(ARRAY[1, 3]::bigint[], 'tenant test')$$,
    '42501',
    NULL,
    'a session pinned to company 1 cannot correct a call of company 2'
);
SELECT guard.pin_company(2);
SELECT is(
    guard.refresh_call_flags(ARRAY[3]::bigint[], 'tenant test'),
    1,
    'pinned to its own company it corrects the call'
);
SELECT set_config('booking_guard.company_id', '', TRUE);

-- A cross-tenant link (an adopted database whose foreign key was not there when the row was
-- written) books nothing: only an appointment of the call's own company counts.
ALTER TABLE appointments DROP CONSTRAINT guard_appointments_call_company_fkey;
INSERT INTO calls (id, company_id, retell_call_id) VALUES (4, 1, 'a-cross');
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id) VALUES (50, 2, 4);
SET LOCAL session_replication_role = origin;
UPDATE calls SET appointment_made = TRUE, appointment_link_status = 'linked', appointment_linked_at = now()
WHERE id = 4;
SET CONSTRAINTS guard.guard_flag_checks_at_commit IMMEDIATE;
SELECT results_eq(
    $$SELECT appointment_made, appointment_link_status FROM calls WHERE id = 4$$,
    $$VALUES (FALSE, 'unlinked'::text)$$,
    'at commit, flags claimed on the strength of another company''s appointment are corrected'
);
SELECT is(
    (
        SELECT count(*)::int FROM guard.correction_audit
        WHERE entity_id = 4
    ),
    1,
    'and the correction is audited'
);

SELECT * FROM finish();
ROLLBACK;
