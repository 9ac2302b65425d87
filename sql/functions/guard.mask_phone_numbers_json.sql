-- guard.mask_phone_numbers over a JSON value (alert and review details, booking details): every
-- string, keys included, at any depth. Numbers, booleans and nulls stay (ids are numbers; a
-- phone number stored as a JSON number is not recognised). NULL stays NULL.
-- PL/pgSQL, not SQL: it calls itself, which a SQL function's body cannot name at creation.
CREATE OR REPLACE FUNCTION guard.mask_phone_numbers_json(document jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE jsonb_typeof(document)
        WHEN 'string' THEN to_jsonb(guard.mask_phone_numbers(document #>> '{}'))
        WHEN 'object' THEN coalesce((
            SELECT jsonb_object_agg(
                guard.mask_phone_numbers(e.key), guard.mask_phone_numbers_json(e.value)
            )
            FROM jsonb_each(document) AS e
        ), '{}'::jsonb)
        WHEN 'array' THEN coalesce((
            SELECT jsonb_agg(guard.mask_phone_numbers_json(e.value) ORDER BY e.n)
            FROM jsonb_array_elements(document) WITH ORDINALITY AS e (value, n)
        ), '[]'::jsonb)
        ELSE document
    END;
END;
$$;
