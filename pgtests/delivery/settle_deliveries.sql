-- guard.settle_deliveries settles what a dispatcher sent or failed to send, the same for every
-- kind (each assertion runs once per kind): only the kind's pending rows on the channel of the
-- subjects it names, sent (with the time) or failed (with the error), their claim released; a
-- row sent or failed already, another channel's, another subject's and another kind's of the
-- same subject are left as they were.
BEGIN;
SELECT plan(8);

CREATE TEMPORARY TABLE kinds (kind) AS VALUES ('review_notice'), ('report');
INSERT INTO guard.deliveries (
    kind, subject, channel, status, delivered_at, last_error, claimed_by, claimed_until
)
SELECT
    k.kind,
    r.*
FROM kinds AS k
CROSS JOIN (
    VALUES
    (8501::bigint, 'done', 'pending', NULL::timestamptz, NULL, 'w1', now() + interval '30 s'),
    (8502, 'done', 'delivered', '2031-01-01 00:00:00+00', NULL, NULL, NULL),
    (8503, 'done', 'failed', NULL, 'earlier error', NULL, NULL),
    (8504, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
    (8501, 'other', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
    (8505, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s'),
    (8506, 'done', 'pending', NULL, NULL, 'w1', now() + interval '30 s')
) AS r;

SELECT
    is(
        guard.settle_deliveries(k.kind, 'done', ARRAY[8501, 8502, 8503]::bigint[]),
        1,
        k.kind || ': one pending row of the three named is sent'
    )
FROM kinds AS k;
SELECT
    is(
        guard.settle_deliveries(k.kind, 'done', ARRAY[8504, 8502, 8503]::bigint[], 'smtp refused'),
        1,
        k.kind || ': one pending row of the three named failed'
    )
FROM kinds AS k;
SELECT
    results_eq(
        format(
            $$SELECT subject, channel, status, delivered_at, last_error, claimed_by
          FROM guard.deliveries WHERE kind = %L ORDER BY subject, channel$$,
            k.kind
        ),
        $$VALUES
        (8501::bigint, 'done', 'delivered', now(), NULL::text, NULL::text),
        (8501, 'other', 'pending', NULL, NULL, 'w1'),
        (8502, 'done', 'delivered', '2031-01-01 00:00:00+00'::timestamptz, NULL, NULL),
        (8503, 'done', 'failed', NULL, 'earlier error', NULL),
        (8504, 'done', 'failed', NULL, 'smtp refused', NULL),
        (8505, 'done', 'pending', NULL, NULL, 'w1'),
        (8506, 'done', 'pending', NULL, NULL, 'w1')$$,
        k.kind || ': sent and failed are final; another channel''s and unnamed subjects'' rows '
        || 'keep their claims'
    )
FROM kinds AS k;
SELECT
    is(
        guard.settle_deliveries(k.kind, 'done', ARRAY[]::bigint[]),
        0,
        k.kind || ': no subject named, nothing settled'
    )
FROM kinds AS k;

SELECT * FROM finish();
ROLLBACK;
