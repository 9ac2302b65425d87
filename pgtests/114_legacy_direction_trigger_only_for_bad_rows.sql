-- I1 on an adopted database: the legacy-row direction trigger (guard.sync_legacy_triggers) fires
-- only for a row whose direction breaks the NOT VALID CHECK. An update of another column of a row
-- with a valid direction, inbound or outbound, is left as written: its customer link is not
-- normalised behind the writer's back (a withheld number's row stays unlinked, as stored), while
-- a row with a direction in the wrong case is normalised whole.
BEGIN;
SELECT plan(4);

INSERT INTO companies (id, name) VALUES (1141, 'adopted');
CREATE TEMP TABLE direction_check AS
SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
WHERE conrelid = 'calls'::regclass AND conname = 'guard_calls_direction_check';
ALTER TABLE calls DROP CONSTRAINT guard_calls_direction_check;
SET LOCAL session_replication_role = replica;
-- As a legacy load left them: a withheld number, no customer, unlinked (the normaliser would
-- have said anonymous; the CHECK allows both).
INSERT INTO calls (id, company_id, retell_call_id, direction, from_number, customer_link_status)
VALUES
(11401, 1141, 'in', 'inbound', 'anonymous', 'unlinked'),
(11402, 1141, 'out', 'outbound', 'anonymous', 'unlinked'),
(11403, 1141, 'wrong-case', 'Inbound', 'anonymous', 'unlinked');
SET LOCAL session_replication_role = origin;
DO $$
BEGIN
    EXECUTE format(
        'ALTER TABLE calls ADD CONSTRAINT guard_calls_direction_check %s NOT VALID',
        (SELECT definition FROM direction_check)
    );
END;
$$;
SELECT results_eq(
    'SELECT trigger_name, action FROM guard.sync_legacy_triggers()',
    $$VALUES ('guard_calls_normalise_legacy_direction', 'created')$$,
    'the NOT VALID direction CHECK gets its legacy-row trigger'
);

UPDATE calls SET status = 'completed'
WHERE id IN (11401, 11402, 11403);
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

SELECT * FROM finish();
ROLLBACK;
