-- What BI tools show for the views that show a table's columns as they are: the masked views of
-- guard.alerts, guard.review_items and guard.correction_audit (the reporting role reads those
-- tables' free text only through them; they have exactly the table's columns) and
-- guard.daily_report_view (guard.daily_reports unpacked). Each such column's comment is copied
-- from the table's, written once in sql/comments/guard.tables_and_views.sql (loaded before).
COMMENT ON VIEW guard.alerts_report IS
'one row per alert of the reader''s companies, open and resolved: the columns of `guard.alerts`, phone numbers in `details` masked';
COMMENT ON VIEW guard.review_items_report IS
'one row per review item of the reader''s companies: the columns of `guard.review_items`, phone numbers in `details`, `note`, `claimed_by` and `closed_by` masked';
COMMENT ON VIEW guard.correction_audit_report IS
'one row per automatic correction of the reader''s companies: the columns of `guard.correction_audit`, phone numbers in `before` and `after` masked';

DO $$
DECLARE
    copied record;
BEGIN
    FOR copied IN
        SELECT v.view_name, a.attname, pg_catalog.col_description(t.oid, a.attnum) AS meaning
        FROM (VALUES
            ('alerts_report', 'alerts'),
            ('review_items_report', 'review_items'),
            ('correction_audit_report', 'correction_audit'),
            ('daily_report_view', 'daily_reports')
        ) AS v (view_name, table_name)
        INNER JOIN pg_catalog.pg_class AS t
            ON t.oid = format('guard.%I', v.table_name)::regclass
        INNER JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
        INNER JOIN pg_catalog.pg_attribute AS va
            ON
                va.attrelid = format('guard.%I', v.view_name)::regclass
                AND va.attname = a.attname
                AND NOT va.attisdropped
    LOOP
        EXECUTE format(
            'COMMENT ON COLUMN guard.%I.%I IS %L', copied.view_name, copied.attname, copied.meaning
        );
    END LOOP;
END;
$$;
