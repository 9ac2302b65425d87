-- Rollback of 0071_review_notices: the notice outbox and the counters' totals go (the counters
-- of `guard metrics` start again from what the tables still hold: a counter reset, which
-- Prometheus' rate() and increase() handle). The functions that use them are definitions: the
-- level rolled back to brings its own.

DROP TABLE guard.review_notices;
DROP TABLE guard.review_notice_subscriptions;
DROP TABLE guard.metric_watermark;
DROP TABLE guard.metric_totals;
