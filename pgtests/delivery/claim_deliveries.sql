-- guard.claim_deliveries, the same for every kind (each assertion runs once per kind): a claim
-- whose lease ended a microsecond ago is free, one that ends exactly now still runs (as for alert
-- deliveries, pgtests/edges/boundaries_other_side.sql); a second dispatcher gets nothing while a
-- lease lasts; another channel's and another kind's rows are claimed on their own; sent and
-- failed rows are never claimed; the batch is the oldest subjects.
BEGIN;
SELECT plan(10);

CREATE TEMPORARY TABLE kinds (kind) AS VALUES ('review_notice'), ('report');
INSERT INTO guard.deliveries (kind, subject, channel, status, delivered_at, claimed_by, claimed_until)
SELECT
    k.kind,
    r.*
FROM kinds AS k
CROSS JOIN (
    VALUES
    (20310201::bigint, 'lease', 'pending', NULL::timestamptz, 'w1', now() - interval '1 microsecond'),
    (20310202, 'lease', 'pending', NULL, 'w1', now()),
    (20310203, 'lease', 'pending', NULL, NULL, NULL),
    (20310204, 'lease', 'delivered', now(), NULL, NULL),
    (20310205, 'lease', 'failed', NULL, NULL, NULL),
    (20310206, 'lease', 'pending', NULL, NULL, NULL),
    (20310201, 'other', 'pending', NULL, NULL, NULL)
) AS r;

SELECT
    results_eq(
        format($$SELECT subject FROM guard.claim_deliveries(%L, 'lease', 'w2', 2, 60)$$, k.kind),
        $$VALUES (20310201::bigint), (20310203)$$,
        k.kind || ': a lease that ended is free, one ending exactly now is not; oldest first'
    )
FROM kinds AS k;
SELECT
    results_eq(
        format(
            $$SELECT subject, claimed_by FROM guard.deliveries
          WHERE kind = %L AND channel = 'lease' AND subject < 20310204 ORDER BY 1$$,
            k.kind
        ),
        $$VALUES (20310201::bigint, 'w2'), (20310202, 'w1'), (20310203, 'w2')$$,
        k.kind || ': the running lease keeps its worker'
    )
FROM kinds AS k;
SELECT
    results_eq(
        format($$SELECT subject FROM guard.claim_deliveries(%L, 'lease', 'w3', 10, 60)$$, k.kind),
        $$VALUES (20310206::bigint)$$,
        k.kind || ': a second dispatcher gets what is free, never sent or failed rows'
    )
FROM kinds AS k;
SELECT
    is(
        (SELECT count(*)::int FROM guard.claim_deliveries(k.kind, 'lease', 'w4', 10, 60)),
        0,
        k.kind || ': nothing left while the leases last'
    )
FROM kinds AS k;
SELECT
    results_eq(
        format($$SELECT subject FROM guard.claim_deliveries(%L, 'other', 'w4', 10, 60)$$, k.kind),
        $$VALUES (20310201::bigint)$$,
        k.kind || ': the other channel is claimed on its own'
    )
FROM kinds AS k;

SELECT * FROM finish();
ROLLBACK;
