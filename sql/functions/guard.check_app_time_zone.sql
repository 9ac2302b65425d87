-- Setting app_time_zone names a zone PostgreSQL knows by its IANA name, or is empty (UTC): an
-- abbreviation (CET) or a POSIX offset (+02) would read summer times an hour wrong.
CREATE OR REPLACE FUNCTION guard.check_app_time_zone()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    zone text := NEW.value #>> '{}';
BEGIN
    IF NEW.value_type <> 'text' THEN
        RAISE EXCEPTION 'setting app_time_zone is text, not %', NEW.value_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF zone <> '' AND NOT EXISTS (SELECT FROM pg_timezone_names AS z WHERE z.name = zone) THEN
        RAISE EXCEPTION 'setting app_time_zone: % is not a time zone name', quote_literal(zone)
            USING
                ERRCODE = 'invalid_parameter_value',
                HINT = 'Name the zone the application writes its times in, as in pg_timezone_names '
                '(e.g. ''Europe/Berlin''), or '''' for UTC.';
    END IF;
    RETURN NEW;
END;
$$;
