-- guard.cron_command: what pg_cron runs for each job. A job of 'N seconds' where pg_cron has
-- minutes only (before 1.5) runs every minute, and that run runs the job every N seconds of its
-- minute (one DO block, committing after each run, and running it again at once while a run
-- says more is due); elsewhere, and for a job whose command arms
-- a timeout first (detect), the job's own command. pg_cron is not installed in this database: its
-- extension row is written here and rolled back.
BEGIN;
SELECT plan(7);

SELECT is(
    guard.cron_command('detect_queue', '15 seconds'), guard.job_command('detect_queue'),
    'without pg_cron: the job''s own command'
);

INSERT INTO pg_catalog.pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)
VALUES (4294967000, 'pg_cron', 10, 'pg_catalog'::regnamespace, FALSE, '1.4-1');

SELECT is(guard.cron_schedule('15 seconds'), '* * * * *', 'pg_cron 1.4: every minute');
SELECT matches(
    guard.cron_command('detect_queue', '15 seconds'),
    '^DO \$run\$ .* PERFORM guard\.run_job\(''detect_queue''\); '
    || 'again := .*booking_guard\.run_again.*; COMMIT; .* CONTINUE WHEN again; '
    || '.*make_interval\(secs => 15 \* .*pg_sleep_until\(next_at\); COMMIT; END LOOP; END \$run\$$',
    'pg_cron 1.4: the minute''s run runs detect_queue every 15 s, committing each run, and at'
    || ' once again while a run leaves more due'
);
SELECT is(
    guard.cron_command('detect', '*/5 * * * *'), guard.job_command('detect'),
    'a cron line keeps the job''s own command'
);
SELECT is(
    guard.cron_command('detect', '30 seconds'), guard.job_command('detect'),
    'a command that arms statement_timeout first is kept as it is'
);
SELECT is(
    (
        SELECT count(*)::integer FROM guard.jobs AS j
        WHERE guard.cron_command(j.name, j.schedule) LIKE 'DO %'
    ),
    1,
    'of the shipped jobs, detect_queue alone runs through the minute'
);

UPDATE pg_catalog.pg_extension SET extversion = '1.5'
WHERE extname = 'pg_cron';
SELECT is(
    guard.cron_command('detect_queue', '15 seconds'), guard.job_command('detect_queue'),
    'pg_cron 1.5: the job keeps its seconds and its own command'
);

SELECT * FROM finish();
ROLLBACK;
