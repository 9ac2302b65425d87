-- The application's own migrations: change the type of a column of the application's table that
-- Booking Guard's views or triggers read, in one call (docs/dba.md, "Adopting a Laravel (or any
-- ORM) application"). A plain ALTER TABLE ... TYPE fails there with "cannot alter type of a
-- column used by a view or rule" (or "in a trigger definition"); this sets those views and
-- triggers aside, alters the column and re-creates them as they were (a disabled trigger stays
-- disabled), in the caller's transaction: a failure leaves everything as it was. Returns how many
-- views and triggers were re-created. using_expression: the ALTER's USING clause, if the cast
-- needs one.
--   SELECT guard.alter_column_type('public.calls', 'status', 'varchar(64)');
-- Run it as the table's owner (the user the application's migrations run as; the application
-- role may execute it). A column a policy or a foreign key uses (the ids, company_id) cannot be
-- changed this way; nor can one that a view or trigger of the application's own reads (drop and
-- re-create those yourself).
-- SECURITY INVOKER: the ALTER, and the triggers (objects of the table), are the table owner's,
-- with the owner's rights; the views are set aside and restored by two SECURITY DEFINER
-- functions that check who asks.
CREATE OR REPLACE FUNCTION guard.alter_column_type(
    target regclass, column_name name, new_type text, using_expression text DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trigger_names name [];
    trigger_definitions text [];
    trigger_states "char" [];
BEGIN
    IF alter_column_type.new_type IS NULL THEN
        RAISE EXCEPTION 'alter_column_type needs the new type'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM guard.set_aside_column_views(alter_column_type.target, alter_column_type.column_name);
    SELECT
        array_agg(t.tgname ORDER BY t.tgname),
        array_agg(t.definition ORDER BY t.tgname),
        array_agg(t.tgenabled ORDER BY t.tgname)
    INTO trigger_names, trigger_definitions, trigger_states
    FROM (
        SELECT DISTINCT tr.tgname, pg_get_triggerdef(tr.oid) AS definition, tr.tgenabled
        FROM pg_trigger AS tr
        INNER JOIN pg_depend AS d
            ON d.classid = 'pg_trigger'::regclass AND tr.oid = d.objid
        INNER JOIN pg_attribute AS a
            ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum
        WHERE
            tr.tgrelid = alter_column_type.target
            AND NOT tr.tgisinternal
            AND tr.tgname LIKE 'guard\_%'
            AND d.refclassid = 'pg_class'::regclass
            AND d.refobjid = alter_column_type.target
            AND a.attname = alter_column_type.column_name
    ) AS t;
    FOR i IN 1 .. coalesce(cardinality(trigger_names), 0) LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trigger_names[i], alter_column_type.target);
    END LOOP;
    EXECUTE format(
        'ALTER TABLE %s ALTER COLUMN %I TYPE %s%s',
        alter_column_type.target,
        alter_column_type.column_name,
        alter_column_type.new_type,
        coalesce(' USING ' || alter_column_type.using_expression, '')
    );
    FOR i IN 1 .. coalesce(cardinality(trigger_names), 0) LOOP
        EXECUTE trigger_definitions[i];
        IF trigger_states[i] = 'D' THEN
            EXECUTE format(
                'ALTER TABLE %s DISABLE TRIGGER %I', alter_column_type.target, trigger_names[i]
            );
        END IF;
    END LOOP;
    RETURN coalesce(cardinality(trigger_names), 0) + guard.restore_column_views();
END;
$$;
