-- The catalog shows each guard trigger with the level, timing and events the design requires
-- (pgTAP has no assertion for these: pg_trigger is queried directly).
BEGIN;
SELECT plan(3);

SELECT results_eq(
    $$SELECT t.tgname::text COLLATE "default",
             CASE WHEN t.tgtype & 1 = 1 THEN 'row' ELSE 'statement' END,
             CASE WHEN t.tgtype & 2 = 2 THEN 'before' ELSE 'after' END,
             concat_ws(',',
                 CASE WHEN t.tgtype & 4 = 4 THEN 'insert' END,
                 CASE WHEN t.tgtype & 16 = 16 THEN 'update' END,
                 CASE WHEN t.tgtype & 8 = 8 THEN 'delete' END),
             coalesce((SELECT string_agg(a.attname::text COLLATE "default", ',' ORDER BY a.attnum)
                       FROM pg_attribute AS a
                       WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr)), '-'),
             coalesce(t.tgoldtable::text COLLATE "default", '-'),
             coalesce(t.tgnewtable::text COLLATE "default", '-'),
             t.tgenabled::text
      FROM pg_trigger AS t
      WHERE t.tgrelid IN ('public.calls'::regclass, 'public.appointments'::regclass)
        AND NOT t.tgisinternal
      ORDER BY 1$$,
    $$VALUES
        ('guard_appointments_note_change', 'row', 'after', 'update',
         'company_id,call_id,status,deleted_at', '-', '-', 'O'),
        ('guard_appointments_sync_delete', 'statement', 'after', 'delete', '-', 'old_rows', '-', 'O'),
        ('guard_appointments_sync_insert', 'statement', 'after', 'insert', '-', '-', 'new_rows', 'O'),
        ('guard_appointments_sync_update', 'statement', 'after', 'update', '-', 'old_rows', 'new_rows', 'O'),
        ('guard_calls_check_flag_claim', 'row', 'after', 'insert', '-', '-', '-', 'O'),
        ('guard_calls_check_flag_write', 'row', 'after', 'update',
         'session_outcome,appointment_made,appointment_link_status,appointment_linked_at,booking_failed',
         '-', '-', 'O'),
        ('guard_calls_normalise', 'row', 'before', 'insert,update',
         'from_number,direction,customer_id,customer_link_status,customer_link_method,customer_link_confidence,customer_linked_at',
         '-', '-', 'O')$$,
    'every guard trigger on the booking tables: level, timing, events, columns, transition tables, enabled'
);
SELECT results_eq(
    $$SELECT t.tgname::text COLLATE "default", t.tgtype & 1 = 1, t.tgtype & 4 = 4,
             t.tgdeferrable, t.tginitdeferred, t.tgenabled::text
      FROM pg_trigger AS t
      WHERE t.tgrelid = 'guard.flag_checks_at_commit'::regclass AND NOT t.tgisinternal$$,
    $$VALUES ('guard_flag_checks_at_commit', TRUE, TRUE, TRUE, TRUE, 'O')$$,
    'the commit-time check of flag writes: a row trigger on insert, deferred until commit'
);
SELECT is(
    (
        SELECT count(*)::int FROM pg_proc AS p INNER JOIN pg_namespace AS n ON p.pronamespace = n.oid
        WHERE
            n.nspname = 'guard' AND p.prosecdef
            AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], FALSE)
    ),
    0,
    'every SECURITY DEFINER guard function has a fixed search_path (see security/security.sql)'
);

SELECT * FROM finish();
ROLLBACK;
