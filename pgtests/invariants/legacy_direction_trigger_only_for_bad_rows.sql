-- I1 and I2 on an adopted database: each legacy-row trigger (guard.sync_legacy_triggers) fires
-- only for a row that breaks its NOT VALID CHECK. An update of another column of a row the CHECKs
-- allow is left as written, its customer link not normalised behind the writer's back: a valid
-- direction, inbound or outbound; no customer and unlinked (a withheld number, which the
-- normaliser would call anonymous) or anonymous (with a link time left over, which it would
-- clear). A row with a direction in the wrong case, or linked without a customer, is normalised.
BEGIN;
SELECT plan(7);

INSERT INTO companies (id, name) VALUES (1141, 'adopted');
CREATE TEMP TABLE legacy_checks AS
SELECT
    conname AS name,
    pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE
    conrelid = 'calls'::regclass
    AND conname IN ('guard_calls_direction_check', 'guard_calls_customer_link_check');
ALTER TABLE calls DROP CONSTRAINT guard_calls_direction_check;
ALTER TABLE calls DROP CONSTRAINT guard_calls_customer_link_check;
SET LOCAL session_replication_role = replica;
-- As a legacy load left them: a withheld number, no customer, unlinked (the normaliser would
-- have said anonymous; the CHECK allows both).
INSERT INTO calls (id, company_id, retell_call_id, direction, from_number, customer_link_status)
VALUES
(11401, 1141, 'in', 'inbound', 'anonymous', 'unlinked'),
(11402, 1141, 'out', 'outbound', 'anonymous', 'unlinked'),
(11403, 1141, 'wrong-case', 'Inbound', 'anonymous', 'unlinked'),
(11412, 1141, 'linked-nobody', 'inbound', '+4930123456', 'linked');
INSERT INTO calls (
    id, company_id, retell_call_id, direction, from_number, customer_link_status, customer_linked_at
) VALUES (11411, 1141, 'anonymous-then', 'inbound', '+4930123456', 'anonymous', now() - interval '1 day');
SET LOCAL session_replication_role = origin;
DO $$
DECLARE
    legacy record;
BEGIN
    FOR legacy IN SELECT name, definition FROM legacy_checks LOOP
        EXECUTE format(
            'ALTER TABLE calls ADD CONSTRAINT %I %s NOT VALID', legacy.name, legacy.definition
        );
    END LOOP;
END;
$$;
SELECT results_eq(
    'SELECT trigger_name, action FROM guard.sync_legacy_triggers()',
    $$VALUES ('guard_calls_normalise_legacy_direction', 'created'),
             ('guard_calls_normalise_legacy_link', 'created')$$,
    'the NOT VALID CHECKs get their legacy-row triggers'
);

UPDATE calls SET status = 'completed'
WHERE company_id = 1141;
SELECT results_eq(
    $$SELECT direction, customer_link_status FROM calls WHERE id = 11401$$,
    $$VALUES ('inbound', 'unlinked')$$,
    'an inbound row updated in another column is left as written'
);
SELECT results_eq(
    $$SELECT direction, customer_link_status FROM calls WHERE id = 11402$$,
    $$VALUES ('outbound', 'unlinked')$$,
    'so is an outbound row'
);
SELECT results_eq(
    $$SELECT direction, customer_link_status FROM calls WHERE id = 11403$$,
    $$VALUES ('inbound', 'anonymous')$$,
    'a row with a direction in the wrong case is normalised, its customer link with it'
);
SELECT results_eq(
    $$SELECT customer_link_status, customer_linked_at IS NOT NULL FROM calls WHERE id = 11401$$,
    $$VALUES ('unlinked', FALSE)$$,
    'an unlinked row without a customer is left unlinked'
);
SELECT results_eq(
    $$SELECT customer_link_status, customer_linked_at IS NOT NULL FROM calls WHERE id = 11411$$,
    $$VALUES ('anonymous', TRUE)$$,
    'an anonymous row keeps the link time it has'
);
SELECT results_eq(
    $$SELECT customer_link_status FROM calls WHERE id = 11412$$,
    $$VALUES ('unlinked')$$,
    'a row linked without a customer is normalised: unlinked'
);

SELECT * FROM finish();
ROLLBACK;
