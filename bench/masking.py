"""Cost of masking free text for BI: Booking Guard's one masking rule against the three it replaced.

    python -m bench.masking [--rows N] [--repeat R] [--json]

One throwaway cluster, migrated. The masking views (guard.calls_report, guard.alerts_report,
guard.review_items_report, guard.correction_audit_report) call guard.mask_phone,
guard.mask_phone_numbers and guard.mask_phone_numbers_json once per row and column: that is
what BI pays for reading them. This bench loads N rows (default 50 000) of what those columns
hold (phone numbers in their usual formats, failure reasons with and without a number, alert
details with ids and timestamps, rollback contexts a few levels deep, a few percent in other
scripts' digits) and runs each view's masking over all of them:

- before: the functions as they were before the one rule (kept below as BEFORE_SQL, created
  in a schema of their own): mask_phone with its own rule, mask_phone_numbers without Unicode
  digits, mask_phone_numbers_json recursive;
- after:  the functions the migrations install now.

Each figure is the median of --repeat runs after one warm-up run, in milliseconds for all rows,
before and after interleaved round by round; the ratio is after / before. The last row is one
context nested 1,000 levels deep: before, it failed with "stack depth limit exceeded".
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._cluster import bench_database, bench_parser, print_measured, progress
from guard.schema.migrate import Migrator

ROWS = 50_000
DATABASE = "bench_masking"
# after / before, at most: the one rule may cost more (Unicode digits, JSON numbers, no
# recursion) but BI must not notice a slower report
TARGET_RATIO = 2.0

BEFORE_SQL = r"""CREATE SCHEMA masking_before;
CREATE OR REPLACE FUNCTION masking_before.mask_phone(phone text)
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
CREATE OR REPLACE FUNCTION masking_before.mask_phone_numbers(free_text text)
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
            ELSE masking_before.mask_phone(numbers[i])
        END || parts[i + 1];
    END LOOP;
    RETURN masked;
END;
$$;
CREATE OR REPLACE FUNCTION masking_before.mask_phone_numbers_json(document jsonb)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE jsonb_typeof(document)
        WHEN 'string' THEN to_jsonb(masking_before.mask_phone_numbers(document #>> '{}'))
        WHEN 'object' THEN coalesce((
            SELECT jsonb_object_agg(
                masking_before.mask_phone_numbers(e.key),
                masking_before.mask_phone_numbers_json(e.value)
            )
            FROM jsonb_each(document) AS e
        ), '{}'::jsonb)
        WHEN 'array' THEN coalesce((
            SELECT jsonb_agg(masking_before.mask_phone_numbers_json(e.value) ORDER BY e.n)
            FROM jsonb_array_elements(document) WITH ORDINALITY AS e (value, n)
        ), '[]'::jsonb)
        ELSE document
    END;
END;
$$;
"""

# (name, the columns the view masks, as an expression of the functions in schema %s)
STATEMENTS = {
    "calls_report: 2 phone columns + reason": (
        "SELECT sum(length({s}.mask_phone(from_number)) + length({s}.mask_phone(to_number))"
        " + coalesce(length({s}.mask_phone_numbers(reason)), 0)) FROM bench_rows"
    ),
    "alerts_report: details": (
        "SELECT sum(length({s}.mask_phone_numbers_json(details)::text)) FROM bench_rows"
    ),
    "review_items_report: details + note": (
        "SELECT sum(length({s}.mask_phone_numbers_json(context)::text)"
        " + coalesce(length({s}.mask_phone_numbers(note)), 0)) FROM bench_rows"
    ),
    "correction_audit_report: before + after": (
        "SELECT sum(length({s}.mask_phone_numbers_json(details)::text)"
        " + length({s}.mask_phone_numbers_json(context)::text)) FROM bench_rows"
    ),
}
DEEP = "context nested 1,000 levels (one row)"

PHONES = ["+49 30 {}", "+4930{}", "030 {}", "(030) {}", "0151 {}", "+1 (555) {}", "030/{}"]
OTHER_DIGITS = [0x0660, 0xFF10, 0x0966]  # Arabic-Indic, full-width, Devanagari


def _phone(rng: random.Random) -> str:
    number = rng.choice(PHONES).format(rng.randint(1_000_000, 9_999_999))
    if rng.random() < 0.03:
        start = rng.choice(OTHER_DIGITS)
        number = "".join(chr(start + int(c)) if c.isdigit() else c for c in number)
    return number


def _reason(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.3:
        return None
    if roll < 0.6:
        return rng.choice(["calendar timeout", "slot taken", "customer hung up", "no service"])
    if roll < 0.8:
        return f"calendar said: caller {_phone(rng)} unreachable"
    return f"retry at 2026-11-{rng.randint(10, 28)}T10:15:00Z, attempt {rng.randint(1, 5)}"


def _details(rng: random.Random, call_id: int) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "session_outcome": rng.choice(["booked", "failed", "no_answer"]),
        "booking_failure_reason": _reason(rng),
        "observed_at": f"2026-11-{rng.randint(10, 28)}T{rng.randint(10, 23)}:00:00+00:00",
        "recent_rate": round(rng.random(), 3),
    }


def _context(rng: random.Random) -> dict[str, Any]:
    context: dict[str, Any] = {"said": _reason(rng) or "", "phone": _phone(rng)}
    for level in range(rng.randint(1, 5)):
        context = {"level": level, "context": context, "attempt_id": rng.randint(1, 10**6)}
    return context


def build(url: str, rows: int, progress: Any) -> dict[str, Any]:
    progress("migrating")
    with Migrator(url) as migrator:
        migrator.apply()
    rng = random.Random(50)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BEFORE_SQL)
        conn.execute(
            "CREATE TABLE bench_rows (id bigint PRIMARY KEY, from_number text, to_number text,"
            " reason text, note text, details jsonb, context jsonb)"
        )
        progress(f"loading {rows:,} rows")
        with conn.cursor().copy(
            "COPY bench_rows (id, from_number, to_number, reason, note, details, context)"
            " FROM STDIN"
        ) as copy:
            for i in range(1, rows + 1):
                copy.write_row(
                    (
                        i,
                        _phone(rng),
                        _phone(rng),
                        _reason(rng),
                        _reason(rng),
                        json.dumps(_details(rng, i)),
                        json.dumps(_context(rng)),
                    )
                )
        conn.execute("VACUUM ANALYZE bench_rows")
    return {"rows": rows}


def _timed(
    conn: psycopg.Connection[Any], statements: dict[str, str], repeat: int
) -> dict[str, Any]:
    """Each side's median over ``repeat`` rounds, the sides interleaved round by round (load from
    other processes then hits both alike), after one warm-up run each; a side that fails gives
    its error's first line."""
    samples: dict[str, list[float]] = {side: [] for side in statements}
    failed: dict[str, str] = {}
    for round_ in range(repeat + 1):
        for side, statement in statements.items():
            if side in failed:
                continue
            try:
                started = time.perf_counter()
                conn.execute(statement).fetchall()
            except psycopg.Error as error:
                failed[side] = str(error).splitlines()[0]
                continue
            if round_:
                samples[side].append((time.perf_counter() - started) * 1000)
    return {side: failed.get(side) or statistics.median(samples[side]) for side in statements}


def run(url: str, repeat: int, progress: Any) -> dict[str, Any]:
    deep = '{"context": ' * 1000 + '"call +49 30 1234567"' + "}" * 1000
    measured: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, statement in STATEMENTS.items():
            progress(name)
            measured[name] = _timed(
                conn,
                {
                    "before": statement.format(s="masking_before"),
                    "after": statement.format(s="guard"),
                },
                repeat,
            )
        conn.execute("CREATE TABLE bench_deep AS SELECT %s::jsonb AS context", (deep,))
        deep_statement = "SELECT length({s}.mask_phone_numbers_json(context)::text) FROM bench_deep"
        measured[DEEP] = _timed(
            conn,
            {
                "before": deep_statement.format(s="masking_before"),
                "after": deep_statement.format(s="guard"),
            },
            repeat,
        )
        differing = conn.execute(
            "SELECT count(*) FILTER (WHERE masking_before.mask_phone_numbers(reason)"
            " IS DISTINCT FROM guard.mask_phone_numbers(reason)), count(*) FROM bench_rows"
        ).fetchone()
    return {"statements": measured, "reasons_masked_differently": differing}


def print_table(header: dict[str, Any], built: dict[str, Any], measured: dict[str, Any]) -> None:
    print(f"Masking for BI over {built['rows']:,} rows, each view's masked columns")
    print(f"  {header['server']}; {header['cores']} cores; median of {header['repeat']} runs, ms")
    print()
    head = f"{'statement':<42}{'before':>12}{'after':>12}{'after/before':>14}"
    print(head)
    print("-" * len(head))
    ratios = []
    for name, row in measured["statements"].items():
        before, after = row["before"], row["after"]
        if isinstance(before, float) and isinstance(after, float):
            ratio = after / before
            ratios.append(ratio)
            print(f"{name:<42}{before:>12.1f}{after:>12.1f}{ratio:>14.2f}")
        else:
            shown = [f"{v:.1f}" if isinstance(v, float) else "fails" for v in (before, after)]
            print(f"{name:<42}{shown[0]:>12}{shown[1]:>12}{'':>14}")
            for side, value in (("before", before), ("after", after)):
                if isinstance(value, str):
                    print(f"    {side}: {value}")
    differing, total = measured["reasons_masked_differently"]
    print()
    print(f"after/before: median {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    print(f"failure reasons masked differently by the one rule: {differing:,} of {total:,}")
    deep = measured["statements"][DEEP]["after"]
    print()
    verdict = "PASS" if max(ratios) <= TARGET_RATIO else "FAIL"
    print(f"  {verdict}  every view's masking within {TARGET_RATIO:g}x of before")
    print(f"  {'PASS' if isinstance(deep, float) else 'FAIL'}  a context 1,000 levels deep is read")


def main(argv: list[str] | None = None) -> int:
    args = bench_parser(__doc__, "rows", ROWS, "rows to load").parse_args(argv)
    with bench_database(DATABASE) as (cluster, server):
        url = cluster.url(DATABASE)
        built = build(url, args.rows, progress)
        result = run(url, args.repeat, progress)
    print_measured(args, server, built, result, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
