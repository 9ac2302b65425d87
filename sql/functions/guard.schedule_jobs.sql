-- Bring pg_cron's schedule in line with guard.jobs: every enabled job is scheduled as
-- guard_<name> running guard.cron_command(its name and schedule) on guard.cron_schedule(its
-- schedule)
-- (cron.schedule upserts by name); guard_* cron jobs that are disabled or no longer exist are
-- unscheduled. Where pg_cron is not installed in this
-- database nothing changes and the message says how to run the jobs instead. pg_cron's objects
-- are reached through the schema the extension lives in (dynamic SQL: it may not exist).
CREATE OR REPLACE FUNCTION guard.schedule_jobs()
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    job record;
    cron_schema text;
    cron_names text[];
    stale_name text;
    scheduled_count integer := 0;
    removed_count integer := 0;
BEGIN
    -- pg_cron keeps its objects in schema cron, whatever its extnamespace says
    SELECT n.nspname INTO cron_schema
    FROM pg_catalog.pg_namespace AS n
    WHERE
        n.nspname = 'cron'
        AND EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_cron');
    IF NOT FOUND THEN
        RETURN 'pg_cron is not installed in this database: schedule skipped; '
            || 'run `guard jobs run` to run the jobs from outside';
    END IF;
    FOR job IN SELECT j.name, j.schedule FROM guard.jobs AS j WHERE j.enabled ORDER BY j.name LOOP
        EXECUTE format('SELECT %I.schedule($1::name, $2, $3)', cron_schema)
        USING
            'guard_' || job.name,
            guard.cron_schedule(job.schedule),
            guard.cron_command(job.name, job.schedule);
        scheduled_count := scheduled_count + 1;
    END LOOP;
    EXECUTE format(
        'SELECT coalesce(array_agg(c.jobname::text), %L) FROM %I.job AS c
        WHERE c.jobname LIKE $1 AND c.database = current_database()',
        '{}',
        cron_schema
    )
    INTO cron_names
    USING 'guard\_%';
    FOR stale_name IN
        SELECT n.cron_name
        FROM unnest(cron_names) AS n (cron_name)
        WHERE NOT EXISTS (
            SELECT FROM guard.jobs AS j WHERE j.enabled AND 'guard_' || j.name = n.cron_name
        )
        ORDER BY n.cron_name
    LOOP
        EXECUTE format('SELECT %I.unschedule($1::name)', cron_schema) USING stale_name;
        removed_count := removed_count + 1;
    END LOOP;
    RETURN format(
        'pg_cron: %s job(s) scheduled, %s unscheduled', scheduled_count, removed_count
    );
END;
$$;
