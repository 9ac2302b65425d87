-- Which review priorities a `guard watch` channel announces (`--review-notices`), and since when.
-- A row is written the first time a dispatcher runs with the option for that channel and
-- priority; only items opened from `since` on are announced, so switching notices on does not
-- flood the channel with the queue that was already there.
CREATE TABLE guard.review_notice_subscriptions (
    channel text NOT NULL CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    priority smallint NOT NULL CHECK (priority >= 0),
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, priority)
);
