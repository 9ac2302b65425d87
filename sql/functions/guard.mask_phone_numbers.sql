-- Mask every phone number inside free text (a failure reason, a note, a JSON string or number),
-- for whatever the reporting role can read: Booking Guard's one masking rule, written here once.
-- guard.mask_phone and guard.mask_phone_numbers_json apply it through this function, and
-- guard/masking.py (the dispatcher, the booking path's logs) reads its patterns and characters
-- from the declarations below and takes the same steps; tests/security/test_masking_rule.py holds
-- every implementation to one table of cases (tests/data/masking_cases.json) and to each other.
--
-- Digits are the Unicode decimal digits (category Nd: ASCII, full-width, Arabic-Indic,
-- Devanagari ... in blocks of ten from 0 to 9) and the superscript, subscript and circled ones;
-- separators are space, the no-break and figure spaces, '-', '.', '/', '_', ',' and parentheses,
-- their full-width forms, the other spaces, dashes and the minus sign, and what shows nothing (the
-- soft hyphen, zero-width spaces and joiners: numbers split by them were left raw). A
-- phone number is a run (as long as it goes): an optional '+' (or '%2B', a '+' in a URL, kept as
-- written) or '(', a digit, then digits each after at most
-- two separators, with at least 7 digits, that is not part of a word: no ASCII letter or digit
-- right after it and, unless it starts with '+' or '(', none right before it, nor one and a '-'
-- (a UUID, a key `book-7-0301234567`). A date at the start of a run (2026-11-22, 22.11.2026,
-- 22.11.26) stays, with the separators after it, and the rest of the run is judged alone. Of a phone number the first digits (at most four,
-- and only while seven are left: the country and area code of most numbers) and the last three
-- stay and every other digit becomes '*'; a run of more than 15 digits (the most E.164 allows)
-- is several numbers written together and every digit becomes '*'. Separators and the rest of the text stay: +49 30 1234567 becomes
-- +49 30 ****567, 030 1234567 becomes 030 ****567, a number in Arabic-Indic digits keeps its
-- digits' script. NULL stays NULL.
-- How: text with non-ASCII characters is first mapped to ASCII, one character for one
-- (translate), so that the patterns read ASCII only and every position stays the same; then all
-- runs are found in one pass (regexp_matches and regexp_split_to_array: the runs and the text
-- between them, in order) and rebuilt (PostgreSQL has no regexp_replace with a callback). One
-- pass, not a search from each run's end: every regular expression call reads its whole
-- subject, so a search per run made a megabyte of hex digits take minutes. The original
-- text is cut at the same places by the same pattern with each class widened by the characters
-- that translate maps into it. Text without seven digits in a run returns after one match. BI
-- reads the masking views over many rows: bench/masking.py measures this function.
CREATE OR REPLACE FUNCTION guard.mask_phone_numbers(free_text text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
DECLARE
    -- the rule's patterns, on text mapped to ASCII (guard/masking.py reads the declarations)
    phone_run CONSTANT text := '(?:%2[Bb]|[+(])?[0-9](?:[ _,./()-]{0,2}[0-9])*';
    seven_digits CONSTANT text := '[0-9](?:[ _,./()-]{0,2}[0-9]){6}';
    date_prefix CONSTANT text := '^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}[.][0-9]{1,2}[.][0-9]{2}(?:[0-9]{2})?)(?![0-9])[ _,./()-]*';
    word_character CONSTANT text := '^[A-Za-z0-9]$';
    normalised text := free_text;
    digit_characters text := '0123456789';
    original_run text := phone_run;  -- phone_run, read on free_text
    -- a URL-encoded '+' that starts a run (kept as written)
    url_plus CONSTANT text := '^%2[Bb]';
    runs text[];  -- the runs of normalised, in order
    gaps text[];  -- the text of normalised before each run, and after the last
    original_runs text[];  -- the same pieces of free_text
    original_gaps text[];
    masked text[] := ARRAY[]::text[];
    seen text := '';  -- the last two characters of normalised before the run
    run text;
    original text;
    after text;
    length_of integer;
    digits integer;
    head integer;
    tail integer;
BEGIN
    IF free_text IS NULL THEN
        RETURN NULL;
    END IF;
    IF octet_length(free_text) <> length(free_text) THEN
        DECLARE
            -- every non-ASCII Nd digit, in blocks of ten from 0 to 9 (Unicode 14)
            unicode_digits CONSTANT text := E'\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9\u07c0\u07c1\u07c2\u07c3\u07c4\u07c5\u07c6\u07c7\u07c8\u07c9\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f\u09e6\u09e7\u09e8\u09e9\u09ea\u09eb\u09ec\u09ed\u09ee\u09ef\u0a66\u0a67\u0a68\u0a69\u0a6a\u0a6b\u0a6c\u0a6d\u0a6e\u0a6f\u0ae6\u0ae7\u0ae8\u0ae9\u0aea\u0aeb\u0aec\u0aed\u0aee\u0aef\u0b66\u0b67\u0b68\u0b69\u0b6a\u0b6b\u0b6c\u0b6d\u0b6e\u0b6f\u0be6\u0be7\u0be8\u0be9\u0bea\u0beb\u0bec\u0bed\u0bee\u0bef\u0c66\u0c67\u0c68\u0c69\u0c6a\u0c6b\u0c6c\u0c6d\u0c6e\u0c6f\u0ce6\u0ce7\u0ce8\u0ce9\u0cea\u0ceb\u0cec\u0ced\u0cee\u0cef\u0d66\u0d67\u0d68\u0d69\u0d6a\u0d6b\u0d6c\u0d6d\u0d6e\u0d6f\u0de6\u0de7\u0de8\u0de9\u0dea\u0deb\u0dec\u0ded\u0dee\u0def\u0e50\u0e51\u0e52\u0e53\u0e54\u0e55\u0e56\u0e57\u0e58\u0e59\u0ed0\u0ed1\u0ed2\u0ed3\u0ed4\u0ed5\u0ed6\u0ed7\u0ed8\u0ed9\u0f20\u0f21\u0f22\u0f23\u0f24\u0f25\u0f26\u0f27\u0f28\u0f29\u1040\u1041\u1042\u1043\u1044\u1045\u1046\u1047\u1048\u1049\u1090\u1091\u1092\u1093\u1094\u1095\u1096\u1097\u1098\u1099\u17e0\u17e1\u17e2\u17e3\u17e4\u17e5\u17e6\u17e7\u17e8\u17e9\u1810\u1811\u1812\u1813\u1814\u1815\u1816\u1817\u1818\u1819\u1946\u1947\u1948\u1949\u194a\u194b\u194c\u194d\u194e\u194f\u19d0\u19d1\u19d2\u19d3\u19d4\u19d5\u19d6\u19d7\u19d8\u19d9\u1a80\u1a81\u1a82\u1a83\u1a84\u1a85\u1a86\u1a87\u1a88\u1a89\u1a90\u1a91\u1a92\u1a93\u1a94\u1a95\u1a96\u1a97\u1a98\u1a99\u1b50\u1b51\u1b52\u1b53\u1b54\u1b55\u1b56\u1b57\u1b58\u1b59\u1bb0\u1bb1\u1bb2\u1bb3\u1bb4\u1bb5\u1bb6\u1bb7\u1bb8\u1bb9\u1c40\u1c41\u1c42\u1c43\u1c44\u1c45\u1c46\u1c47\u1c48\u1c49\u1c50\u1c51\u1c52\u1c53\u1c54\u1c55\u1c56\u1c57\u1c58\u1c59\ua620\ua621\ua622\ua623\ua624\ua625\ua626\ua627\ua628\ua629\ua8d0\ua8d1\ua8d2\ua8d3\ua8d4\ua8d5\ua8d6\ua8d7\ua8d8\ua8d9\ua900\ua901\ua902\ua903\ua904\ua905\ua906\ua907\ua908\ua909\ua9d0\ua9d1\ua9d2\ua9d3\ua9d4\ua9d5\ua9d6\ua9d7\ua9d8\ua9d9\ua9f0\ua9f1\ua9f2\ua9f3\ua9f4\ua9f5\ua9f6\ua9f7\ua9f8\ua9f9\uaa50\uaa51\uaa52\uaa53\uaa54\uaa55\uaa56\uaa57\uaa58\uaa59\uabf0\uabf1\uabf2\uabf3\uabf4\uabf5\uabf6\uabf7\uabf8\uabf9\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\U000104a0\U000104a1\U000104a2\U000104a3\U000104a4\U000104a5\U000104a6\U000104a7\U000104a8\U000104a9\U00010d30\U00010d31\U00010d32\U00010d33\U00010d34\U00010d35\U00010d36\U00010d37\U00010d38\U00010d39\U00011066\U00011067\U00011068\U00011069\U0001106a\U0001106b\U0001106c\U0001106d\U0001106e\U0001106f\U000110f0\U000110f1\U000110f2\U000110f3\U000110f4\U000110f5\U000110f6\U000110f7\U000110f8\U000110f9\U00011136\U00011137\U00011138\U00011139\U0001113a\U0001113b\U0001113c\U0001113d\U0001113e\U0001113f\U000111d0\U000111d1\U000111d2\U000111d3\U000111d4\U000111d5\U000111d6\U000111d7\U000111d8\U000111d9\U000112f0\U000112f1\U000112f2\U000112f3\U000112f4\U000112f5\U000112f6\U000112f7\U000112f8\U000112f9\U00011450\U00011451\U00011452\U00011453\U00011454\U00011455\U00011456\U00011457\U00011458\U00011459\U000114d0\U000114d1\U000114d2\U000114d3\U000114d4\U000114d5\U000114d6\U000114d7\U000114d8\U000114d9\U00011650\U00011651\U00011652\U00011653\U00011654\U00011655\U00011656\U00011657\U00011658\U00011659\U000116c0\U000116c1\U000116c2\U000116c3\U000116c4\U000116c5\U000116c6\U000116c7\U000116c8\U000116c9\U00011730\U00011731\U00011732\U00011733\U00011734\U00011735\U00011736\U00011737\U00011738\U00011739\U000118e0\U000118e1\U000118e2\U000118e3\U000118e4\U000118e5\U000118e6\U000118e7\U000118e8\U000118e9\U00011950\U00011951\U00011952\U00011953\U00011954\U00011955\U00011956\U00011957\U00011958\U00011959\U00011c50\U00011c51\U00011c52\U00011c53\U00011c54\U00011c55\U00011c56\U00011c57\U00011c58\U00011c59\U00011d50\U00011d51\U00011d52\U00011d53\U00011d54\U00011d55\U00011d56\U00011d57\U00011d58\U00011d59\U00011da0\U00011da1\U00011da2\U00011da3\U00011da4\U00011da5\U00011da6\U00011da7\U00011da8\U00011da9\U00016a60\U00016a61\U00016a62\U00016a63\U00016a64\U00016a65\U00016a66\U00016a67\U00016a68\U00016a69\U00016ac0\U00016ac1\U00016ac2\U00016ac3\U00016ac4\U00016ac5\U00016ac6\U00016ac7\U00016ac8\U00016ac9\U00016b50\U00016b51\U00016b52\U00016b53\U00016b54\U00016b55\U00016b56\U00016b57\U00016b58\U00016b59\U0001d7ce\U0001d7cf\U0001d7d0\U0001d7d1\U0001d7d2\U0001d7d3\U0001d7d4\U0001d7d5\U0001d7d6\U0001d7d7\U0001d7d8\U0001d7d9\U0001d7da\U0001d7db\U0001d7dc\U0001d7dd\U0001d7de\U0001d7df\U0001d7e0\U0001d7e1\U0001d7e2\U0001d7e3\U0001d7e4\U0001d7e5\U0001d7e6\U0001d7e7\U0001d7e8\U0001d7e9\U0001d7ea\U0001d7eb\U0001d7ec\U0001d7ed\U0001d7ee\U0001d7ef\U0001d7f0\U0001d7f1\U0001d7f2\U0001d7f3\U0001d7f4\U0001d7f5\U0001d7f6\U0001d7f7\U0001d7f8\U0001d7f9\U0001d7fa\U0001d7fb\U0001d7fc\U0001d7fd\U0001d7fe\U0001d7ff\U0001e140\U0001e141\U0001e142\U0001e143\U0001e144\U0001e145\U0001e146\U0001e147\U0001e148\U0001e149\U0001e2f0\U0001e2f1\U0001e2f2\U0001e2f3\U0001e2f4\U0001e2f5\U0001e2f6\U0001e2f7\U0001e2f8\U0001e2f9\U0001e950\U0001e951\U0001e952\U0001e953\U0001e954\U0001e955\U0001e956\U0001e957\U0001e958\U0001e959\U0001fbf0\U0001fbf1\U0001fbf2\U0001fbf3\U0001fbf4\U0001fbf5\U0001fbf6\U0001fbf7\U0001fbf8\U0001fbf9';
            -- non-ASCII separators (and the full-width plus), then what each stands for
            -- (after the full-width forms: the soft hyphen, invisible format characters and
            -- other spaces, dashes and the minus sign, the small, superscript and subscript plus
            -- and parentheses)
            unicode_punctuation CONSTANT text := E'\u00a0\u2007\u202f\u3000\u2010\u2011\u2012\u2013\uff0b\uff08\uff09\uff0d\uff0e\uff0f\uff3f\uff0c\u00ad\u200b\u200c\u200d\u2060\u2063\ufeff\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u205f\u2014\u2015\u2212\ufe58\ufe63\u207a\u208a\ufe62\u207d\u208d\ufe59\u207e\u208e\ufe5a';
            ascii_punctuation CONSTANT text := '    ----+()-./_,-                  -----+++((()))';
            -- the digits that are not decimal digits (category No) but stand for one: the
            -- superscript and subscript digits, the circled, negative circled and dingbat circled
            -- ones, in blocks of ten from 0 to 9 as unicode_digits
            other_digits CONSTANT text := E'\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089\u24ea\u2460\u2461\u2462\u2463\u2464\u2465\u2466\u2467\u2468\u24ff\u2776\u2777\u2778\u2779\u277a\u277b\u277c\u277d\u277e\U0001f10b\u2780\u2781\u2782\u2783\u2784\u2785\u2786\u2787\u2788\U0001f10c\u278a\u278b\u278c\u278d\u278e\u278f\u2790\u2791\u2792';
            -- the characters mapped to '+': a run may start with them, they separate nothing
            plus_forms CONSTANT text := E'\uff0b\u207a\u208a\ufe62';
            -- and those mapped to '(', which may start a run too
            opening_forms CONSTANT text := E'\uff08\u207d\u208d\ufe59';
            all_digits CONSTANT text := unicode_digits || other_digits;
        BEGIN
            digit_characters := digit_characters || all_digits;
            -- the plus and opening parenthesis forms may start a run, and so may '%' and 'B'
            -- after a character mapped to '2' (every n-th digit with n % 10 = 2); every other
            -- mapped character is a separator
            original_run := '(?:%[2' || regexp_replace(all_digits, '..(.).{7}', '\1', 'g')
                || '][Bb]|[+(' || plus_forms || opening_forms || '])?[0-9' || all_digits
                || '](?:[ _,./()' || translate(unicode_punctuation, plus_forms, '')
                || '-]{0,2}[0-9' || all_digits || '])*';
            normalised := translate(
                free_text,
                all_digits || unicode_punctuation,
                repeat('0123456789', length(all_digits) / 10) || ascii_punctuation
            );
        END;
    END IF;
    IF normalised !~ seven_digits THEN
        RETURN free_text;
    END IF;
    runs := ARRAY(
        SELECT m.found[1]
        FROM regexp_matches(normalised, phone_run, 'g') WITH ORDINALITY AS m (found, n)
        ORDER BY m.n
    );
    gaps := regexp_split_to_array(normalised, phone_run);
    IF normalised = free_text THEN
        original_runs := runs;
        original_gaps := gaps;
    ELSE
        original_runs := ARRAY(
            SELECT m.found[1]
            FROM regexp_matches(free_text, original_run, 'g') WITH ORDINALITY AS m (found, n)
            ORDER BY m.n
        );
        original_gaps := regexp_split_to_array(free_text, original_run);
    END IF;
    FOR i IN 1 .. coalesce(array_length(runs, 1), 0) LOOP
        masked := array_append(masked, original_gaps[i]);
        seen := right(seen || gaps[i], 2);
        run := runs[i];
        original := original_runs[i];
        after := left(gaps[i + 1] || coalesce(runs[i + 1], ''), 1);
        -- part of a word: a letter or digit right after the run or, for a run that starts with
        -- a digit, right before it (or before a '-' right before it)
        IF after ~ word_character
            OR (left(run, 1) ~ word_character AND (
                right(seen, 1) ~ word_character
                OR (right(seen, 1) = '-' AND left(seen, 1) ~ word_character AND length(seen) = 2)
            )) THEN
            masked := array_append(masked, original);
            seen := right(seen || run, 2);
            CONTINUE;
        END IF;
        seen := right(seen || run, 2);
        -- a URL-encoded plus (%2B) at the start stays as written, like '+'
        IF run ~ url_plus THEN
            masked := array_append(masked, left(original, 3));
            original := substr(original, 4);
            run := substr(run, 4);
        END IF;
        -- a date at the start stays, with the separators after it; the rest is judged alone
        LOOP
            length_of := length(substring(run FROM date_prefix));
            EXIT WHEN length_of IS NULL OR length_of = 0;
            masked := array_append(masked, left(original, length_of));
            original := substr(original, length_of + 1);
            run := substr(run, length_of + 1);
        END LOOP;
        digits := length(run) - length(translate(run, '0123456789', ''));
        IF digits < 7 THEN
            masked := array_append(masked, original);
            CONTINUE;
        END IF;
        IF digits > 15 THEN
            head := 0;
            tail := 0;
        ELSE
            -- through the first least(4, digits - 7) digits; from the third last digit on
            head := CASE WHEN digits = 7 THEN 0 ELSE regexp_instr(run, '[0-9]', 1, least(4, digits - 7)) END;
            tail := length(run) + 1 - regexp_instr(run, '[0-9]', 1, digits - 2);
        END IF;
        masked := array_append(
            masked,
            left(original, head)
            || translate(
                substr(original, head + 1, length(original) - head - tail),
                digit_characters,
                repeat('*', length(digit_characters))
            )
            || right(original, tail)
        );
    END LOOP;
    masked := array_append(masked, original_gaps[coalesce(array_length(runs, 1), 0) + 1]);
    RETURN array_to_string(masked, '');
END;
$$;
