-- Which `guard watch` channels deliver the daily report (`--report CHANNEL`), and from which day
-- on. A row is written the first time a dispatcher runs with the option for that channel; its
-- first report day is the day before (yesterday's report, the newest one the job stores), so
-- switching reports on does not send the channel every report ever stored.
CREATE TABLE guard.report_subscriptions (
    channel text PRIMARY KEY CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
    subscribed_at timestamptz NOT NULL DEFAULT now(),
    first_report_date date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date - 1)
);
