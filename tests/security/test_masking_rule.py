"""Booking Guard's one masking rule, held to one table of cases (issue 50, row 8).

The rule is written once, in sql/functions/guard.mask_phone_numbers.sql; guard.mask_phone and
guard.mask_phone_numbers_json apply it through that function, and guard/masking.py (the
dispatcher, the booking path) reads its patterns and characters from that file. Every case of
tests/data/masking_cases.json runs against every implementation:

* SQL: guard.mask_phone_numbers (free text), guard.mask_phone (a phone column: the text cases
  too, as a value), guard.mask_phone_numbers_json (each text case as a value, a key and a value
  deep in a document; the JSON cases);
* Python: guard.masking.mask_phone_numbers and mask_json, the dispatcher's payload
  text and details (guard/ops/dispatch/message.py) and the booking path's error messages
  (guard/booking.py).

On top of the table, generated cases: the number written in every block of Unicode decimal
digits (from unicodedata), with every separator, as a JSON number at depths up to 5,000 levels;
and generated text and documents on which SQL and Python must agree character for character.
Before the rule there were four implementations with three rules; none of these held.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import masking
from guard.booking import masked_message as _masked
from guard.errors import first_line
from guard.ops.dispatch.message import MAX_DETAIL_CHARS, _clean_text, safe_details

CASES: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "masking_cases.json").read_text("utf-8")
)
TEXT = [(case["input"], case["masked"]) for case in CASES["text"]]
PHONE = [(case["input"], case["masked"]) for case in CASES["phone"]]
DOCUMENTS = [(case["input"], case["masked"]) for case in CASES["json"]]

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def sql(pg_cluster: Any, template_database: str) -> Iterator[Conn]:
    """One connection for the module (the functions are IMMUTABLE: nothing to isolate)."""
    with (
        pg_cluster.database(template=template_database) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        yield conn


def sql_texts(conn: Conn, function: str, values: list[str]) -> list[str]:
    rows = conn.execute(
        f"SELECT guard.{function}(v) FROM unnest(%s::text[]) WITH ORDINALITY AS x (v, n)"
        " ORDER BY n",
        (values,),
    ).fetchall()
    return [row[0] for row in rows]


def sql_documents(conn: Conn, documents: list[Any]) -> list[Any]:
    rows = conn.execute(
        "SELECT guard.mask_phone_numbers_json(d::jsonb)"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS x (d, n) ORDER BY n",
        ([json.dumps(d) for d in documents],),
    ).fetchall()
    return [row[0] for row in rows]


def _ids(cases: list[tuple[Any, Any]]) -> list[str]:
    return [ascii(case[0])[:40] for case in cases]


# ---------------------------------------------------------------------------- the table


def test_every_text_case_in_sql(sql: Conn) -> None:
    inputs = [case for case, _ in TEXT]
    assert list(zip(inputs, sql_texts(sql, "mask_phone_numbers", inputs), strict=True)) == TEXT


@pytest.mark.parametrize(("text", "masked"), TEXT, ids=_ids(TEXT))
def test_every_text_case_in_python(text: str, masked: str) -> None:
    assert masking.mask_phone_numbers(text) == masked
    assert masking.mask_phone_numbers(masked) == masked  # masking twice changes nothing
    # the dispatcher: masked, then one line and shortened
    assert _clean_text(text, 10_000) == " ".join(masked.split())
    assert _clean_text(text, MAX_DETAIL_CHARS) == " ".join(masked.split())[:MAX_DETAIL_CHARS]
    # the booking path's error messages: the first line, masked
    expected = first_line(RuntimeError(masked)) if text else ""
    assert _masked(RuntimeError(text)) == expected[:200]


def _as_value(text: str, masked: str) -> str:
    """What guard.mask_phone makes of a text case: the masked text, or *** without a number."""
    return "***" if masked == text else masked


def _mask_phone(phone: str) -> str:
    """guard.mask_phone's contract, from the Python rule: the value trimmed of spaces, masked, or
    *** without a number (the runtime masks no phone column in Python)."""
    number = phone.strip(" ")
    return _as_value(number, masking.mask_phone_numbers(number))


def test_every_phone_case_in_sql_and_python(sql: Conn) -> None:
    cases = PHONE + [(t, _as_value(t, m)) for t, m in TEXT if t == t.strip(" ")]
    inputs = [case for case, _ in cases]
    assert list(zip(inputs, sql_texts(sql, "mask_phone", inputs), strict=True)) == cases
    assert [(t, _mask_phone(t)) for t in inputs] == cases
    assert sql.execute("SELECT guard.mask_phone(NULL)").fetchone() == (None,)


def _in_documents(text: str) -> Any:
    return {"value": text, "deep": [[{"k": [text]}]], f"key {text}": 1}


def test_every_case_in_json_in_sql_and_python(sql: Conn) -> None:
    """The JSON cases, and every text case as a value, deep in a document and as a key."""
    cases = DOCUMENTS + [(_in_documents(t), _in_documents(m)) for t, m in TEXT]
    results = sql_documents(sql, [document for document, _ in cases])
    assert [(d, r) for (d, _), r in zip(cases, results, strict=True)] == cases
    assert [(d, masking.mask_json(d)) for d, _ in cases] == cases
    assert sql.execute("SELECT guard.mask_phone_numbers_json(NULL)").fetchone() == (None,)


def test_the_dispatcher_masks_numbers_in_details() -> None:
    for document, masked in DOCUMENTS:
        if isinstance(document, int):
            assert safe_details({"call_id": document}) == {"call_id": masked}


# ---------------------------------------------------------------------------- generated


def _nd_blocks() -> list[int]:
    """The first code point of every block of ten Unicode decimal digits (category Nd)."""
    return [
        cp
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) == "Nd" and unicodedata.digit(chr(cp)) == 0
    ]


def _in_block(text: str, start: int) -> str:
    return "".join(chr(start + int(ch)) if ch.isascii() and ch.isdigit() else ch for ch in text)


def test_the_rule_knows_every_unicode_digit() -> None:
    """The digits the rule maps to ASCII (guard.mask_phone_numbers' declaration unicode_digits)
    are exactly the non-ASCII Nd digits of this Python's Unicode database, in blocks of ten from
    0 to 9 (the rule reads the n-th as n % 10)."""
    declared = masking.rule()["unicode_digits"]
    expected = "".join(chr(start + d) for start in _nd_blocks() if start > 0x7F for d in range(10))
    assert declared == expected, (
        f"regenerate unicode_digits from unicodedata {unicodedata.unidata_version}"
    )
    assert [unicodedata.digit(ch) for ch in declared] == [n % 10 for n in range(len(declared))]


def test_the_rule_knows_the_digits_that_are_not_decimal() -> None:
    """The superscript, subscript and circled digits (issue 71: a number written in them stayed
    raw): declared in other_digits, in blocks of ten from 0 to 9, and with them every character
    whose NFKC form is one ASCII digit."""
    declared = masking.rule()["other_digits"]
    assert [unicodedata.numeric(ch) for ch in declared] == [n % 10 for n in range(len(declared))]
    folds_to_a_digit = {
        chr(cp)
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) != "Nd"
        and len(folded := unicodedata.normalize("NFKC", chr(cp))) == 1
        and folded in "0123456789"
    }
    assert folds_to_a_digit <= set(declared)


def test_a_number_in_digits_that_are_not_decimal(sql: Conn) -> None:
    """Each block of other_digits, as the Nd blocks are, SQL and Python alike."""
    declared = masking.rule()["other_digits"]
    blocks = [declared[i : i + 10] for i in range(0, len(declared), 10)]
    cases = [
        (
            "".join(block[int(ch)] if ch.isascii() and ch.isdigit() else ch for ch in text),
            "".join(block[int(ch)] if ch.isascii() and ch.isdigit() else ch for ch in masked),
        )
        for block in blocks
        for text, masked in NUMBER_CASES
    ]
    inputs = [text for text, _ in cases]
    assert list(zip(inputs, sql_texts(sql, "mask_phone_numbers", inputs), strict=True)) == cases
    assert [(t, masking.mask_phone_numbers(t)) for t in inputs] == cases


NUMBER_CASES = [
    ("+49 30 1234567", "+49 30 ****567"),
    ("call 030 1234567, please", "call 030 ****567, please"),
    ("0301234567", "030****567"),
    ("on 2026-11-22 call 4930987654321", "on 2026-11-22 call 4930******321"),
]


def test_a_number_in_every_block_of_unicode_digits(sql: Conn) -> None:
    cases = [
        (_in_block(text, start), _in_block(masked, start))
        for start in _nd_blocks()
        for text, masked in NUMBER_CASES
    ]
    assert len(cases) > 4 * 60
    inputs = [text for text, _ in cases]
    assert list(zip(inputs, sql_texts(sql, "mask_phone_numbers", inputs), strict=True)) == cases
    assert [(t, masking.mask_phone_numbers(t)) for t in inputs] == cases


SEPARATORS = [
    " ", "-", ".", "/", "_", ",", "(", ")",
    "\u00a0", "\u2007", "\u202f", "\u3000",  # no-break, figure, narrow no-break, ideographic
    "\u2010", "\u2011", "\u2012", "\u2013",  # hyphen, non-breaking hyphen, figure dash, en dash
    "\uff0d", "\uff0e", "\uff0f", "\uff3f", "\uff0c", "\uff08", "\uff09",  # full-width
    "\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\u2063", "\ufeff", "\u180e",  # invisible
    "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",  # other spaces
    "\u2008", "\u2009", "\u200a", "\u205f",
    "\u2014", "\u2015", "\u2212", "\ufe58", "\ufe63",  # dashes, minus
    "\u207d", "\u208d", "\ufe59", "\u207e", "\u208e", "\ufe5a",  # small, super-, subscript ( )
]  # fmt: skip


def test_a_number_with_every_separator(sql: Conn) -> None:
    cases = []
    for sep in SEPARATORS:
        cases += [
            (f"030{sep}1234567", f"030{sep}****567"),
            (f"+49{sep}30{sep}{sep}1234567", f"+49{sep}30{sep}{sep}****567"),
            # three separators end a run: the seven digits after them are a number of their own
            (f"030{sep}{sep}{sep}1234567", f"030{sep}{sep}{sep}****567"),
        ]
    inputs = [text for text, _ in cases]
    assert list(zip(inputs, sql_texts(sql, "mask_phone_numbers", inputs), strict=True)) == cases
    assert [(t, masking.mask_phone_numbers(t)) for t in inputs] == cases


def _nested(depth: int, leaf: Any) -> Any:
    document = leaf
    for level in range(depth):
        document = [document] if level % 2 else {"context": document, "n": level}
    return document


def _nested_text(depth: int, leaf: Any) -> str:
    """``json.dumps(_nested(depth, leaf))`` without recursion (json.dumps stops at about 1,000
    levels: that is Python's limit, not the masking's)."""
    opening, closing = [], []
    for level in range(depth):
        if level % 2:
            opening.append("[")
            closing.append("]")
        else:
            opening.append('{"context": ')
            closing.append(f', "n": {level}}}')
    return "".join(reversed(opening)) + json.dumps(leaf) + "".join(closing)


def _leaf(document: Any, depth: int) -> Any:
    """The value at the bottom of a document built by ``_nested``, walked down in a loop; the
    levels on the way must be as ``_nested`` built them."""
    for level in reversed(range(depth)):
        if level % 2:
            assert isinstance(document, list) and len(document) == 1
            document = document[0]
        else:
            assert isinstance(document, dict) and document["n"] == level
            document = document["context"]
    return document


@pytest.mark.parametrize("depth", [1, 2, 100, 1_000, 5_000])
def test_json_numbers_and_strings_at_any_depth(sql: Conn, depth: int) -> None:
    """A phone number sent as a JSON number, and one in a string, at the bottom of a document
    nested `depth` levels: masked by SQL and by Python, without recursion."""
    leaf = {"phone": 4930987654321, "said": "call me on +49 30 9876543"}
    masked_leaf = {"phone": "4930******321", "said": "call me on +49 30 ****543"}
    row = sql.execute(
        "SELECT guard.mask_phone_numbers_json(%s::jsonb) = %s::jsonb",
        (_nested_text(depth, leaf), _nested_text(depth, masked_leaf)),
    ).fetchone()
    assert row == (True,)
    assert _leaf(masking.mask_json(_nested(depth, leaf)), depth) == masked_leaf


# ---------------------------------------------------------------------------- SQL == Python

ALPHABET = (
    "0123456789" * 4
    + "\u0661\u0663\u0667\uff10\uff15\u0966\U0001d7ce"  # other decimal digits
    + " " * 6
    + "-./_,()+\u00a0\uff0d\u3000\u00ad\u200b\u2212\u207a\u207d"  # separators and plus
    + "\u00b2\u2079\u2081\u2460\u24ea"  # superscript, subscript, circled digits
    + "%%%BBb"  # URL-encoded plus
    + 'abZü:#\n"\\\x1bT'  # letters, other punctuation, a quote, a backslash, a control
)

FIXTURE = HealthCheck.function_scoped_fixture
texts = st.text(alphabet=ALPHABET, max_size=40)
integers = st.integers(min_value=-(10**18), max_value=10**18)
documents = st.recursive(
    st.none() | st.booleans() | integers | texts,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet="abcxyz", max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(texts, min_size=30, max_size=30))
def test_sql_and_python_mask_generated_text_alike(sql: Conn, batch: list[str]) -> None:
    batch = [text.replace("\x00", "") for text in batch]
    assert sql_texts(sql, "mask_phone_numbers", batch) == [
        masking.mask_phone_numbers(t) for t in batch
    ]
    assert sql_texts(sql, "mask_phone", batch) == [_mask_phone(t) for t in batch]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(documents, min_size=10, max_size=10))
def test_sql_and_python_mask_generated_documents_alike(sql: Conn, batch: list[Any]) -> None:
    batch = json.loads(json.dumps(batch).replace("\\u0000", ""))
    assert sql_documents(sql, batch) == [masking.mask_json(d) for d in batch]


def test_the_comparison_can_fail(sql: Conn) -> None:
    """Not vacuous: a Python rule keeping one digit more is told apart on the table."""
    inputs = [case for case, _ in TEXT]
    from_sql = sql_texts(sql, "mask_phone_numbers", inputs)
    off_by_one = [text.replace("****", "***", 1) for text in from_sql]
    assert off_by_one != from_sql
