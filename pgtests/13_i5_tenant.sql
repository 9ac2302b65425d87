-- I5: an appointment and its call belong to the same company; no write can link across tenants.
BEGIN;
SELECT plan(9);

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

-- An existing cross-tenant link (an adopted database whose foreign key is not validated yet,
-- loaded here with triggers bypassed) books nothing: an appointment counts only for a call of
-- its own company.
INSERT INTO calls (id, company_id, retell_call_id) VALUES (3, 1, 'a3');
SET LOCAL session_replication_role = replica;
INSERT INTO appointments (id, company_id, call_id) VALUES (900, 2, 3);
SET LOCAL session_replication_role = origin;
SELECT is_empty(
    $$SELECT f.id FROM guard.call_flags_to_correct(ARRAY[3]::bigint[], FALSE) AS f$$,
    'an appointment of another company does not make a call booked'
);

SELECT * FROM finish();
ROLLBACK;
