-- guard.claim_report_deliveries at the end of a lease: a claim whose lease ended a microsecond
-- ago is free, one that ends exactly now still runs (as for alert deliveries, pgtests/edges/boundaries_other_side.sql).
BEGIN;
SELECT plan(2);

INSERT INTO guard.report_deliveries (report_date, channel, claimed_by, claimed_until) VALUES
('2031-02-01', 'lease', 'w1', now() - interval '1 microsecond'),
('2031-02-02', 'lease', 'w1', now()),
('2031-02-03', 'lease', NULL, NULL);

SELECT results_eq(
    $$SELECT report_date FROM guard.claim_report_deliveries('lease', 'w2', 10, 60) ORDER BY 1$$,
    $$VALUES (date '2031-02-01'), (date '2031-02-03')$$,
    'claim_report_deliveries: a lease that ended is free, one ending exactly now is not'
);
SELECT results_eq(
    $$SELECT report_date, claimed_by FROM guard.report_deliveries WHERE channel = 'lease' ORDER BY 1$$,
    $$VALUES (date '2031-02-01', 'w2'), (date '2031-02-02', 'w1'), (date '2031-02-03', 'w2')$$,
    'claim_report_deliveries: the running lease keeps its worker'
);

SELECT * FROM finish();
ROLLBACK;
