-- guard.mask_phone_numbers over a JSON value (alert and review details, a rolled back booking's
-- context, an audited row): every string, keys included, and every number, at any depth, is
-- masked by Booking Guard's one rule; a number that holds a phone number (4930987654321: seven
-- digits or more) becomes the masked string ("4930******321"). Everything else stays. NULL stays
-- NULL.
-- Without recursion, so that no depth fails (a context nested 1,000 levels deep once made
-- guard.alerts_report and guard.review_items_report fail with "stack depth limit exceeded" for
-- the whole tenant): the document's text is read token by token (each string and number; one
-- regular expression), the tokens that hold a digit are masked and put back (in one pass: a
-- document of megabytes costs its length, not its length squared), and the text is read back as
-- jsonb. A document with fewer than seven digits returns at once.
CREATE OR REPLACE FUNCTION guard.mask_phone_numbers_json(document jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    -- a string (with its escapes) or a number, as jsonb prints them
    json_token CONSTANT text := '"(?:[^"\\]|\\.)*"|-?[0-9][-+.eE0-9]*';
    document_text text;
    parts text[];
    tokens text[];
    token text;
    plain text;
    masked text;
    changed boolean := FALSE;
BEGIN
    IF document IS NULL THEN
        RETURN NULL;
    END IF;
    document_text := document::text;
    IF octet_length(document_text) = length(document_text)
        AND length(document_text) - length(translate(document_text, '0123456789', '')) < 7 THEN
        RETURN document;
    END IF;
    parts := regexp_split_to_array(document_text, json_token);
    tokens := ARRAY(
        SELECT m[1] FROM regexp_matches(document_text, '(' || json_token || ')', 'g') AS m
    );
    FOR i IN 1 .. cardinality(tokens) LOOP
        token := tokens[i];
        IF token ~ '[0-9]' OR octet_length(token) <> length(token) THEN
            IF left(token, 1) = '"' THEN
                plain := token::jsonb #>> '{}';
            ELSE
                plain := token;
            END IF;
            masked := guard.mask_phone_numbers(plain);
            IF masked <> plain THEN
                tokens[i] := to_jsonb(masked)::text;
                changed := TRUE;
            END IF;
        END IF;
    END LOOP;
    IF NOT changed THEN
        RETURN document;
    END IF;
    -- each text between tokens followed by its token (the last one has none)
    RETURN (
        SELECT string_agg(x.part || coalesce(x.token, ''), '' ORDER BY x.n)
        FROM unnest(parts, tokens) WITH ORDINALITY AS x (part, token, n)
    )::jsonb;
END;
$$;
