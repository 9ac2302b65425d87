-- Mask a phone number for reporting: the country and area prefix and the last three digits stay,
-- every other digit becomes a star: +49 30 1234567 becomes +49 30 ****567. Without separators
-- the plus sign and two digits stay (+49301234567 becomes +49******567). At least four digits are
-- always hidden: when the last group is shorter than seven digits only the first group stays, and
-- when even that leaves fewer than seven digits to mask only a leading plus sign stays. Input with
-- fewer than seven digits, or anything that is not a phone number, is masked entirely (***).
-- NULL stays NULL.
CREATE OR REPLACE FUNCTION guard.mask_phone(phone text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    number text := btrim(phone);
    digits integer;
    kept text;
    rest text;
BEGIN
    IF phone IS NULL THEN
        RETURN NULL;
    END IF;
    IF number !~ '^\+?[0-9(][0-9 ()./-]*[0-9]$' THEN
        RETURN '***';
    END IF;
    digits := length(regexp_replace(number, '[^0-9]', '', 'g'));
    IF digits < 7 THEN
        RETURN '***';
    END IF;
    IF number !~ '[^0-9+]' THEN
        -- no separators: keep the '+' and two digits
        kept := substring(number FROM '^\+?[0-9]{2}');
    ELSIF length(substring(number FROM '([0-9]+)$')) >= 7 THEN
        -- keep every group before the last (country and area code)
        kept := substring(number FROM '^(.*[^0-9])[0-9]+$');
    ELSE
        -- a short last group: keep the first group only
        kept := substring(number FROM '^(\+?[(]?[0-9]+[^0-9]+)');
    END IF;
    kept := coalesce(kept, '');
    rest := substring(number FROM length(kept) + 1);
    IF length(regexp_replace(rest, '[^0-9]', '', 'g')) < 7 THEN
        -- what is left would hide fewer than four digits: keep only a leading '+'
        kept := substring(number FROM '^\+?');
        rest := substring(number FROM length(kept) + 1);
    END IF;
    RETURN kept
        || regexp_replace(left(rest, length(rest) - 3), '[0-9]', '*', 'g')
        || right(rest, 3);
END;
$$;
