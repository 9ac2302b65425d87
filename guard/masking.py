"""Phone numbers masked by Booking Guard's one rule, in Python: what leaves the database through the
dispatcher (guard/ops/dispatch/message.py) and what the booking path logs (guard/booking.py)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from guard.resources import sql_dir

RULE_FILE = "functions/guard.mask_phone_numbers.sql"
_DECLARATION = re.compile(r"^\s*(\w+) CONSTANT text := (E?)'((?:[^']|'')*)';$", re.M)


@lru_cache(maxsize=1)
def rule() -> dict[str, Any]:
    """The declarations of ``guard.mask_phone_numbers`` (name -> value), read from its file."""
    text = (sql_dir() / RULE_FILE).read_text(encoding="utf-8")
    found: dict[str, Any] = {}
    for name, escaped, literal in _DECLARATION.findall(text):
        value = literal.replace("''", "'")
        found[name] = codecs.decode(value, "unicode_escape") if escaped else value
    return found


class _Rule:
    """The compiled rule (built once, on first use)."""

    def __init__(self) -> None:
        declared = rule()
        self.phone_run = re.compile(declared["phone_run"])
        self.seven_digits = re.compile(declared["seven_digits"])
        self.date_prefix = re.compile(declared["date_prefix"])
        self.word_character = re.compile(declared["word_character"])
        self.url_plus = re.compile(declared["url_plus"])
        digits: str = declared["unicode_digits"] + declared["other_digits"]
        punctuation: str = declared["unicode_punctuation"]
        ascii_punctuation: str = declared["ascii_punctuation"]
        self.to_ascii = {ord(ch): ord("0") + index % 10 for index, ch in enumerate(digits)}
        self.to_ascii.update(zip(map(ord, punctuation), map(ord, ascii_punctuation), strict=True))
        self.to_star = {ord(ch): "*" for ch in "0123456789" + digits}

    def word(self, character: str) -> bool:
        return self.word_character.match(character) is not None


_compiled = lru_cache(maxsize=1)(_Rule)


def _part_of_a_word(normalised: str, start: int, end: int, compiled: _Rule) -> bool:
    """A letter or digit right after the run or, for a run that starts with a digit, right
    before it (or before a '-' right before it)."""
    if compiled.word(normalised[end : end + 1]):
        return True
    if not compiled.word(normalised[start]):
        return False
    before = normalised[max(start - 2, 0) : start]
    return compiled.word(before[-1:]) or (
        before[-1:] == "-" and len(before) == 2 and compiled.word(before[0])
    )


def _mask_run(original: str, run: str, compiled: _Rule) -> str:
    """One run the pattern found (``run``: mapped to ASCII, ``original``: as written)."""
    kept = ""
    if compiled.url_plus.match(run):
        kept, original, run = original[:3], original[3:], run[3:]
    while (date := compiled.date_prefix.match(run)) is not None and date.end() > 0:
        kept += original[: date.end()]
        original, run = original[date.end() :], run[date.end() :]
    digits = sum(ch in "0123456789" for ch in run)
    if digits < 7:
        return kept + original
    if digits > 15:
        head = tail = 0
    else:
        head = _through_digits(run, min(4, digits - 7))
        # from the third last digit on
        tail = len(run) - _through_digits(run, digits - 2) + 1
    middle = original[head : len(original) - tail].translate(compiled.to_star)
    return kept + original[:head] + middle + original[len(original) - tail :]


def _through_digits(run: str, count: int) -> int:
    """The length of the shortest start of ``run`` that holds ``count`` (at most all) digits."""
    return re.match(f"(?:[^0-9]*[0-9]){{{count}}}", run).end()  # type: ignore[union-attr]


def mask_phone_numbers(text: str) -> str:
    """Every phone number in ``text`` masked (``guard.mask_phone_numbers``)."""
    compiled = _compiled()
    normalised = text if text.isascii() else text.translate(compiled.to_ascii)
    if compiled.seven_digits.search(normalised) is None:
        return text
    out: list[str] = []
    last = 0
    for match in compiled.phone_run.finditer(normalised):
        start, end = match.span()
        out.append(text[last:start])
        if _part_of_a_word(normalised, start, end, compiled):
            out.append(text[start:end])
        else:
            out.append(_mask_run(text[start:end], match.group(), compiled))
        last = end
    out.append(text[last:])
    return "".join(out)


def mask_json(document: Any, mask: Callable[[str], str] = mask_phone_numbers) -> Any:
    """A JSON value (as ``json.loads`` returns it) with every string, key and number masked
    (``guard.mask_phone_numbers_json``): a number that holds a phone number becomes the masked
    string. Iterative: any depth."""
    result: list[Any] = [None]
    # (the value to mask, the container the result goes into, its key or index)
    stack: list[tuple[Any, Any, Any]] = [(document, result, 0)]
    while stack:
        value, into, at = stack.pop()
        if isinstance(value, dict):
            copy: dict[str, Any] = {}
            into[at] = copy
            for key, item in value.items():
                masked_key = mask(key)
                copy[masked_key] = None
                stack.append((item, copy, masked_key))
        elif isinstance(value, list):
            items: list[Any] = [None] * len(value)
            into[at] = items
            stack.extend((item, items, index) for index, item in enumerate(value))
        elif isinstance(value, str):
            into[at] = mask(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = json.dumps(value)
            masked = mask(text)
            into[at] = value if masked == text else masked
        else:
            into[at] = value
    return result[0]
