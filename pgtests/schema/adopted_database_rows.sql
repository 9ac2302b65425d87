-- Rows a fresh database never has and an adopted one does: written as the old application left
-- them, with Booking Guard's triggers off (session_replication_role = replica, which also skips
-- the foreign keys) and, for I1 and I2, under CHECKs that are NOT VALID, as `guard db apply`
-- leaves them on an adopted table. For every invariant of guard.rules an existing bad row is
-- detected (by its check views, by check_call, or by VALIDATE CONSTRAINT), its clean look-alike
-- is not, and the CHECKs still refuse the same row written anew.
BEGIN;
SELECT plan(39);

INSERT INTO companies (id, name) VALUES (691, 'adopted'), (692, 'other'), (693, 'gone quiet'), (694, 'failing');

-- The adopted calls table: direction nullable, its two CHECKs added NOT VALID over old rows.
SELECT pgtap_setup.drop_calls_checks('guard_calls_direction_check', 'guard_calls_customer_link_check');

SET LOCAL session_replication_role = replica;
INSERT INTO calls (
    id, company_id, direction, customer_id, customer_link_status, session_outcome, appointment_made,
    appointment_link_status, appointment_linked_at, booking_failed, created_at, updated_at
) VALUES
-- I1: no direction, an unknown one; the clean one
(6901, 691, NULL, NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6902, 691, 'sideways', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6903, 691, 'outbound', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
-- I1: an empty, an upper-case and a padded direction, none of them inbound; inbound itself
(6921, 691, '', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6922, 691, 'INBOUND', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6923, 691, ' inbound', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6924, 691, 'inbound', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
-- I2: a customer without a link status (incomplete link); the clean anonymous call
(6904, 691, 'inbound', 1, NULL, NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6905, 691, 'inbound', NULL, 'anonymous', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
-- I3: an active appointment (below) the flags deny; the clean booked call
(6906, 691, 'inbound', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(
    6907, 691, 'inbound', NULL, 'unlinked', 'appointment_booked', TRUE, 'linked', now() - interval '2 days', FALSE,
    now() - interval '2 days', now() - interval '2 days'
),
-- I4: a booking claimed two days ago, no appointment; the same claim inside the grace period
(6908, 691, 'inbound', NULL, 'unlinked', 'appointment_booked', TRUE, 'linked', now(), FALSE, now() - interval '2 days', now() - interval '2 days'),
(6909, 691, 'inbound', NULL, 'unlinked', 'appointment_booked', TRUE, 'linked', now(), FALSE, now(), now()),
-- I5: a booked call whose only appointment is of another company; a clean call another
-- company's appointment links to
(6910, 691, 'inbound', NULL, 'unlinked', 'appointment_booked', TRUE, 'linked', now(), FALSE, now() - interval '2 days', now() - interval '2 days'),
(6911, 691, 'inbound', NULL, 'unlinked', NULL, FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
-- I7: a booking that failed a minute ago; one that failed two days ago (outside the window)
(6912, 691, 'inbound', NULL, 'unlinked', 'creation_failed', FALSE, 'creation_failed', NULL, TRUE, now() - interval '1 minute', now()),
(6913, 691, 'inbound', NULL, 'unlinked', 'creation_failed', FALSE, 'creation_failed', NULL, TRUE, now() - interval '2 days', now()),
-- I8: an outcome outside the known set; a known one
(6914, 691, 'inbound', NULL, 'unlinked', 'Appointment_Booked', FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days'),
(6915, 691, 'inbound', NULL, 'unlinked', 'callback', FALSE, NULL, NULL, FALSE, now() - interval '2 days', now() - interval '2 days');

INSERT INTO appointments (id, company_id, call_id, source, status, calcom_v2_booking_id, created_at, deleted_at) VALUES
(6906, 691, 6906, 'retell_webhook', 'scheduled', 'u6906', now() - interval '2 days', NULL),
(6907, 691, 6907, 'retell_webhook', 'confirmed', 'u6907', now() - interval '2 days', NULL),
(6910, 692, 6910, 'retell_webhook', 'scheduled', 'u6910', now() - interval '2 days', NULL),
(6911, 692, 6911, 'manual', 'scheduled', 'u6911', now() - interval '2 days', NULL),
-- I6: a voice-agent appointment without a call; a manual one, and a soft-deleted voice one
(6916, 691, NULL, ' Retell_Webhook ', 'scheduled', 'u6916', now() - interval '2 days', NULL),
(6917, 691, NULL, 'manual', 'scheduled', 'u6917', now() - interval '2 days', NULL),
(6918, 691, NULL, 'retell_webhook', 'scheduled', 'u6918', now() - interval '2 days', now() - interval '1 day'),
-- I8: a status outside the known set ('canceled': counts as active, detected)
(6919, 691, NULL, 'manual', 'canceled', 'u6919', now() - interval '2 days', NULL),
-- I10: call 6906 booked a second time, a minute after its first appointment
(6920, 691, 6906, 'retell_webhook', 'scheduled', 'u6920', now() - interval '2 days' + interval '1 minute', NULL);

-- I7: an attempt that called the calendar an hour ago and never finished; one that is in time
INSERT INTO guard.booking_attempts (company_id, call_id, service_id, idempotency_key, created_at) VALUES
(691, 6903, 1, 'adopted-old', now() - interval '1 hour'),
(691, 6905, 1, 'adopted-new', now());

-- I9: a company with its usual traffic at this hour of the week four weeks running, and none
-- now (calls and appointments); I7: a company whose every recent call failed.
INSERT INTO calls (id, company_id, direction, created_at, updated_at)
SELECT
    69300 + 10 * w + n,
    693,
    'inbound',
    t AS created_at,
    t AS updated_at
FROM generate_series(1, 4) AS w, generate_series(1, 6) AS n,
    LATERAL (SELECT now() - make_interval(days => 7 * w) - interval '10 minutes' AS t) AS x;
INSERT INTO appointments (id, company_id, source, created_at)
SELECT
    69300 + 10 * w + n,
    693,
    'manual',
    now() - make_interval(days => 7 * w) - interval '10 minutes'
FROM generate_series(1, 4) AS w, generate_series(1, 6) AS n;
INSERT INTO calls (id, company_id, direction, session_outcome, booking_failed, created_at)
SELECT
    69400 + n,
    694,
    'inbound',
    'creation_failed',
    TRUE,
    now() - interval '5 minutes'
FROM generate_series(1, 6) AS n;
SET LOCAL session_replication_role = origin;

-- The CHECKs come back NOT VALID, as on an adopted table before `guard db validate`.
SELECT pgtap_setup.calls_checks_not_valid();

-- What every shipped check view finds now (each view whole: a detection pass over the history).
CREATE TEMPORARY TABLE found (check_id text, rule_id text, entity_type text, entity_id bigint);
DO $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT check_view FROM guard.checks WHERE check_view = ANY (guard.shipped_check_views()) LOOP
        EXECUTE format(
            'INSERT INTO found SELECT check_id, rule_id, entity_type, entity_id FROM guard.%I', k.check_view
        );
    END LOOP;
END;
$$;
CREATE FUNCTION pg_temp.found(check_id text, entity_id bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT FROM found AS f WHERE f.check_id = $1 AND f.entity_id = $2)
$$;

-- I1
SELECT ok(pg_temp.found('call_without_direction', 6901), 'I1: an adopted call without direction is detected');
SELECT ok(pg_temp.found('call_without_direction', 6902), 'I1: an adopted call with an unknown direction is detected');
SELECT ok(NOT pg_temp.found('call_without_direction', 6903), 'I1: an adopted outbound call is not');
SELECT is(
    (
        SELECT array_agg(f.entity_id ORDER BY f.entity_id) FROM found AS f
        WHERE f.check_id = 'call_without_direction' AND f.entity_id BETWEEN 6921 AND 6924
    ),
    ARRAY[6921, 6922, 6923]::bigint[],
    'I1: an empty, upper-case or padded direction is detected (compared as written); inbound is not'
);
SELECT throws_ok(
    'ALTER TABLE calls VALIDATE CONSTRAINT guard_calls_direction_check', '23514', NULL,
    'I1: validating the direction CHECK over the adopted rows fails'
);
SELECT throws_ok(
    $$INSERT INTO calls (id, company_id, direction) VALUES (6950, 691, 'sideways')$$, '23514', NULL,
    'I1: the NOT VALID CHECK still refuses an unknown direction written anew'
);

-- I2: no check view; the adopted row is what keeps the CHECK from validating
SELECT is(
    (
        SELECT array_agg(id ORDER BY id) FROM calls
        WHERE
            id IN (6904, 6905)
            AND NOT guard.is_valid_customer_link(
                customer_id, customer_link_status, customer_linked_at, customer_link_method, customer_link_confidence
            )
    ),
    ARRAY[6904::bigint], 'I2: the incomplete link is the invalid one, the anonymous call is not'
);
SELECT throws_ok(
    'ALTER TABLE calls VALIDATE CONSTRAINT guard_calls_customer_link_check', '23514', NULL,
    'I2: validating the customer-link CHECK over the adopted rows fails'
);
SET LOCAL session_replication_role = replica;
SELECT throws_ok(
    $$INSERT INTO calls (id, company_id, direction, customer_id) VALUES (6951, 691, 'inbound', 1)$$,
    '23514', NULL, 'I2: a customer without a link, written with triggers off, is refused'
);
SELECT throws_ok(
    $$INSERT INTO calls (id, company_id, direction, customer_id, customer_link_status, customer_linked_at,
          customer_link_method, customer_link_confidence)
      VALUES (6952, 691, 'inbound', 1, 'linked', now(), 'phone', 100.01)$$,
    '23514', NULL, 'I2: a confidence just above 100, written with triggers off, is refused'
);
SELECT lives_ok(
    $$INSERT INTO calls (id, company_id, direction, customer_id, customer_link_status, customer_linked_at,
          customer_link_method, customer_link_confidence)
      VALUES (6953, 691, 'inbound', 1, 'linked', now(), 'phone', 100)$$,
    'I2: a complete link of confidence 100, written with triggers off, is accepted'
);
SET LOCAL session_replication_role = origin;

-- I3
SELECT ok(pg_temp.found('flags_contradict_appointments', 6906), 'I3: flags that deny an active appointment are detected');
SELECT ok(NOT pg_temp.found('flags_contradict_appointments', 6907), 'I3: a booked call with its appointment is not');
SELECT ok(
    EXISTS (SELECT FROM guard.call_flags_to_correct(ARRAY[6906::bigint], FALSE)),
    'I3: the derivation would correct the detected call too'
);
SELECT is(
    (
        SELECT offending FROM guard.check_call(6906)
        WHERE check_id = 'flags_contradict_appointments'
    ), 1,
    'I3: check_call of the call finds it as the batch view does'
);

-- I4
SELECT ok(pg_temp.found('booked_without_appointment', 6908), 'I4: a phantom booking past the grace period is detected');
SELECT ok(NOT pg_temp.found('booked_without_appointment', 6909), 'I4: one inside the grace period is not');
SELECT is(
    (
        SELECT offending FROM guard.check_call(6908)
        WHERE check_id = 'booked_without_appointment'
    ), 1,
    'I4: check_call of the call finds it as the batch view does'
);

-- I5: cross-company links, from both sides
SELECT ok(pg_temp.found('cross_tenant_link', 6910), 'I5: another company''s appointment on a booked call is detected');
SELECT ok(pg_temp.found('cross_tenant_link', 6911), 'I5: another company''s appointment on an unbooked call is detected');
SELECT ok(NOT pg_temp.found('cross_tenant_link', 6907), 'I5: an appointment of the call''s own company is not');
SELECT ok(
    pg_temp.found('booked_without_appointment', 6910),
    'I5: a call whose only appointment is of another company books nothing: its claim is a phantom'
);
SELECT ok(
    NOT pg_temp.found('flags_contradict_appointments', 6911),
    'I5: another company''s appointment does not make an unbooked call contradict'
);
SELECT is(
    (SELECT new_made FROM guard.call_flags_to_correct(ARRAY[6910::bigint], FALSE)), FALSE,
    'I5: the derivation unbooks the call whose only appointment is of another company'
);
SELECT throws_ok(
    $$INSERT INTO appointments (id, company_id, call_id) VALUES (6960, 692, 6907)$$, '23503', NULL,
    'I5: with triggers on, another company''s appointment on a call is refused'
);
SELECT throws_ok(
    $$UPDATE calls SET company_id = 692 WHERE id = 6907$$, '23503', NULL,
    'I5: with triggers on, moving a booked call to another company is refused'
);

-- I6
SELECT ok(pg_temp.found('orphaned_voice_appointment', 6916), 'I6: a voice-agent appointment without a call is detected');
SELECT ok(NOT pg_temp.found('orphaned_voice_appointment', 6917), 'I6: a manual appointment without a call is not');
SELECT ok(NOT pg_temp.found('orphaned_voice_appointment', 6918), 'I6: a soft-deleted voice-agent one is not');

-- I7
SELECT ok(pg_temp.found('recent_booking_failure', 6912), 'I7: a booking that failed a minute ago is detected');
SELECT ok(NOT pg_temp.found('recent_booking_failure', 6913), 'I7: one that failed two days ago is not');
SELECT is(
    (
        SELECT array_agg(b.call_id ORDER BY b.call_id) FROM found AS f INNER JOIN guard.booking_attempts AS b ON f.entity_id = b.id
        WHERE f.check_id = 'booking_outcome_unknown'
    ),
    ARRAY[6903::bigint], 'I7: the attempt calling for an hour is detected, the one in time is not'
);
SELECT ok(pg_temp.found('booking_failure_anomaly', 694), 'I7: a company whose every recent call failed is detected');

-- I8
SELECT ok(pg_temp.found('unknown_value', 6914), 'I8: an outcome outside the known set is detected');
SELECT ok(pg_temp.found('unknown_value', 6919), 'I8: an appointment status outside the known set is detected');
SELECT ok(NOT pg_temp.found('unknown_value', 6915), 'I8: a known outcome is not');

-- I9
SELECT ok(
    pg_temp.found('calls_stopped', 693) AND pg_temp.found('bookings_stopped', 693),
    'I9: a company whose calls and appointments stopped is detected'
);

-- I10
SELECT ok(pg_temp.found('double_booked_call', 6920), 'I10: a call''s second active appointment is detected');

-- Every invariant of guard.rules had an existing bad row detected above (I2 by its CHECK).
SELECT is(
    (
        SELECT array_agg(r.id ORDER BY r.id) FROM guard.rules AS r
        WHERE
            r.invariant IS NOT NULL AND r.id <> 'I2_customer_link'
            AND NOT EXISTS (
                SELECT FROM found AS f
                WHERE f.rule_id = r.id
            )
    ),
    NULL, 'every invariant but I2 (a CHECK, no view) has an adopted bad row detected'
);

SELECT * FROM finish();
ROLLBACK;
