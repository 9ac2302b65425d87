-- Remove exactly what 0002 added: tables Booking Guard created, and on adopted tables only the
-- columns that were missing. The application's own data and columns stay.
DO $$
DECLARE
    added record;
BEGIN
    FOR added IN
        SELECT b.table_name, b.column_name
        FROM guard.baseline_objects AS b
        JOIN guard.baseline_objects AS t
            ON t.table_name = b.table_name AND t.column_name = ''
        WHERE b.column_name <> '' AND b.created_by_guard AND NOT t.created_by_guard
    LOOP
        EXECUTE format('ALTER TABLE public.%I DROP COLUMN IF EXISTS %I', added.table_name, added.column_name);
    END LOOP;
    FOR added IN
        SELECT t.table_name
        FROM guard.baseline_objects AS t
        WHERE t.column_name = '' AND t.created_by_guard
        ORDER BY array_position(
            ARRAY['appointments', 'calls', 'services', 'customers', 'companies'], t.table_name
        )
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS public.%I', added.table_name);
    END LOOP;
END;
$$;

DELETE FROM guard.baseline_objects;
