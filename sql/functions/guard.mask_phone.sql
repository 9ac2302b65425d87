-- Mask a phone number for reporting (a phone column: guard.calls_report's from_number_masked
-- and to_number_masked): Booking Guard's one masking rule (guard.mask_phone_numbers) applied to
-- the value, spaces around it trimmed: +49 30 1234567 becomes +49 30 ****567, +49301234567
-- becomes +4930****567 (the first digits, at most four, while seven are left, and the last three
-- stay; at least four are hidden). A value in which the rule finds no phone number (fewer than
-- seven digits, letters inside the number, anything that is not a phone number) is masked
-- entirely: ***. NULL stays NULL.
-- SQL, without SET clauses, so that the planner inlines it into the view that calls it (one
-- PL/pgSQL call per value instead of two: BI reads calls_report over many rows, bench/masking.py);
-- every function it calls is qualified, and the masking itself is guard.mask_phone_numbers'
-- (SET search_path = pg_catalog): the caller's search_path can at most choose between that
-- function's answer and *** (through the = of nullif), never show a number.
CREATE OR REPLACE FUNCTION guard.mask_phone(phone text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT CASE WHEN phone IS NOT NULL THEN
        coalesce(
            nullif(guard.mask_phone_numbers(pg_catalog.btrim(phone)), pg_catalog.btrim(phone)),
            '***'
        )
    END;
$$;
