-- Mask every phone number inside free text (a failure reason, a note, a JSON string), for
-- whatever the reporting role can read: each run that looks like a phone number (an optional
-- '+', then digits with spaces, dots, dashes, slashes or brackets, at least seven digits) is
-- masked as guard.mask_phone masks a number. A run of more than fifteen digits (the longest
-- number E.164 allows) is several numbers written next to each other, and mask_phone would keep
-- every group but the last: all its digits are hidden. A date (YYYY-MM-DD, as in a timestamp)
-- is not a phone number and stays. The rest of the text stays as it was. NULL stays NULL.
-- Not a regexp_replace: the replacement depends on the match (PostgreSQL 15 has no callback).
CREATE OR REPLACE FUNCTION guard.mask_phone_numbers(free_text text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    number_pattern constant text := '\+?[0-9(][0-9 ()./-]{5,}[0-9]';
    parts text[];
    numbers text[];
    masked text;
BEGIN
    IF free_text IS NULL OR free_text !~ number_pattern THEN
        RETURN free_text;
    END IF;
    parts := regexp_split_to_array(free_text, number_pattern);
    numbers := ARRAY(
        SELECT m[1] FROM regexp_matches(free_text, '(' || number_pattern || ')', 'g') AS m
    );
    masked := parts[1];
    FOR i IN 1 .. cardinality(numbers) LOOP
        masked := masked || CASE
            WHEN numbers[i] ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN numbers[i]
            WHEN length(regexp_replace(numbers[i], '[^0-9]', '', 'g')) < 7 THEN numbers[i]
            WHEN length(regexp_replace(numbers[i], '[^0-9]', '', 'g')) > 15
                THEN regexp_replace(numbers[i], '[0-9]', '*', 'g')
            ELSE guard.mask_phone(numbers[i])
        END || parts[i + 1];
    END LOOP;
    RETURN masked;
END;
$$;
