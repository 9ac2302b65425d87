-- guard.json_excerpt at each of its edges: a document of exactly 16 kB of text stays whole (stored
-- compressed or not) and one byte more becomes an excerpt; a key of 64 characters is kept and one
-- of 65 left out; a string of 200 characters is kept whole and one of 201 cut; every scalar type
-- (string, number, boolean, null) is kept and nested values left out; at most 64 keys, the first
-- by name, a stored details_truncated not among them; a document that is no object, or holds no
-- scalar, leaves only the pointer to the rest; NULL stays NULL. guard.json_scalars, the cut it
-- makes (and a review notice always shows), applies to a document of any size.
BEGIN;
SELECT plan(21);

-- {"a": "xxx..."} prints as 9 characters around its string: 16375 x make 16384 bytes.
CREATE TEMP TABLE doc AS
SELECT
    jsonb_build_object('a', repeat('x', 16375)) AS at_limit,
    jsonb_build_object('a', repeat('x', 16376)) AS over_limit;

SELECT is(
    (SELECT octet_length(at_limit::text) FROM doc), 16384, 'the first document is 16384 bytes'
);
SELECT is(
    (SELECT guard.json_excerpt(at_limit, 'more') = at_limit FROM doc),
    TRUE,
    'a document of exactly 16384 bytes stays whole'
);
-- Not read from a table, so not compressed: its stored size (16392) is over 16384, its text not.
SELECT is(
    guard.json_excerpt(jsonb_build_object('a', repeat('x', 16375)), 'more'),
    jsonb_build_object('a', repeat('x', 16375)),
    'a document of 16384 bytes stays whole however it is stored'
);
SELECT is(
    (SELECT guard.json_excerpt(over_limit, 'more') -> 'details_truncated' FROM doc),
    jsonb_build_object('bytes', 16385, 'read_more', 'more'),
    'a document of 16385 bytes is an excerpt with its size and where to read the rest'
);

-- Over the limit: scalars of every type, nested values, keys at and over 64 characters, strings
-- at and over 200 characters.
CREATE TEMP TABLE excerpt AS
SELECT guard.json_excerpt(
    jsonb_build_object(
        'text', 's',
        'number', 4.5,
        'flag', FALSE,
        'nothing', NULL,
        'nested', jsonb_build_object('k', 1),
        'list', jsonb_build_array(1, 2),
        repeat('k', 64), 'key of 64',
        repeat('l', 65), 'key of 65',
        'at200', repeat('y', 200),
        'over200', repeat('z', 201),
        'padding', jsonb_build_array(repeat('p', 17000))
    ),
    'more'
) AS e;

SELECT is((SELECT e -> 'text' FROM excerpt), '"s"'::jsonb, 'a string is kept');
SELECT is((SELECT e -> 'number' FROM excerpt), '4.5'::jsonb, 'a number is kept');
SELECT is((SELECT e -> 'flag' FROM excerpt), 'false'::jsonb, 'a boolean is kept');
SELECT is((SELECT e -> 'nothing' FROM excerpt), 'null'::jsonb, 'a JSON null is kept');
SELECT ok(
    (SELECT NOT e ?| ARRAY['nested', 'list', 'padding'] FROM excerpt),
    'objects and arrays are left out'
);
SELECT is(
    (SELECT e ->> repeat('k', 64) FROM excerpt), 'key of 64', 'a key of 64 characters is kept'
);
SELECT ok((SELECT NOT e ? repeat('l', 65) FROM excerpt), 'a key of 65 characters is left out');
SELECT is(
    (SELECT e ->> 'at200' FROM excerpt) || '/' || (SELECT e ->> 'over200' FROM excerpt),
    repeat('y', 200) || '/' || repeat('z', 200),
    'a string of 200 characters is kept whole, one of 201 cut to 200'
);

-- 70 scalar keys k01..k70 and a stored details_truncated (first by name): the first 64 keys by
-- name but that one, and the pointer in its place.
CREATE TEMP TABLE many AS
SELECT guard.json_excerpt(
    (
        SELECT
            jsonb_object_agg(format('k%s', to_char(g, 'FM00')), repeat('v', 300))
            || '{"details_truncated": "stored"}'
        FROM generate_series(1, 70) AS g
    ),
    'more'
) AS e;
SELECT is(
    (SELECT array_agg(k ORDER BY k) FROM many, jsonb_object_keys(many.e) AS k),
    (
        SELECT array_agg(k ORDER BY k)
        FROM (
            SELECT format('k%s', to_char(g, 'FM00')) AS k FROM generate_series(1, 64) AS g
            UNION ALL
            SELECT 'details_truncated'
        ) AS expected
    ),
    'at most 64 keys are kept, the first by name, a stored details_truncated not among them'
);
SELECT is(
    (SELECT e -> 'details_truncated' ->> 'read_more' FROM many),
    'more',
    'the stored details_truncated gives way to the pointer'
);

SELECT is(
    guard.json_excerpt(jsonb_build_array(repeat('a', 17000)), 'more'),
    jsonb_build_object('details_truncated', jsonb_build_object('bytes', 17004, 'read_more', 'more')),
    'a large array leaves only the pointer'
);
SELECT is(
    guard.json_excerpt(jsonb_build_object('nested', jsonb_build_array(repeat('b', 17000))), 'more'),
    jsonb_build_object('details_truncated', jsonb_build_object('bytes', 17016, 'read_more', 'more')),
    'a large object without scalars leaves only the pointer'
);
SELECT is(
    guard.json_excerpt(jsonb_build_array(repeat('a', 17000)), NULL),
    jsonb_build_object('details_truncated', jsonb_build_object('bytes', 17004, 'read_more', NULL)),
    'no read_more: the pointer says null'
);
SELECT is(guard.json_excerpt(NULL, 'more'), NULL, 'NULL stays NULL');

SELECT is(
    guard.json_scalars('{"s": "short", "n": [1], "details_truncated": 1}'),
    '{"s": "short"}'::jsonb,
    'json_scalars cuts a small document too: its scalars only, no details_truncated'
);
SELECT is(guard.json_scalars('[1, 2]'), '{}'::jsonb, 'json_scalars of a non-object is {}');
SELECT is(guard.json_scalars(NULL), NULL, 'json_scalars of NULL is NULL');

SELECT * FROM finish();
ROLLBACK;
