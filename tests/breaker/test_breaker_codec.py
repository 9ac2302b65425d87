"""The Lua scripts and ``codec.py`` name the same hash fields (issue 52).

Python reads a circuit's hash only through ``codec.py``; the scripts read and write it inside
Redis. A field renamed, added or dropped on one side only would make Python show (or the
scripts decide on) a field nobody writes. These tests read the scripts as Redis runs them and
collect every field name they touch: the literals inside ``redis.call('H…', …)`` and inside the
``names`` tables the scripts unpack into such calls, and the slot prefix of ``'w' .. i``.
"""

from __future__ import annotations

import re

from guard.breaker import codec
from guard.breaker import redis_store as lua

_HASH_CALL = re.compile(r"redis\.call\('(HSET|HMGET|HGET|HDEL|HEXISTS)'")
_NAMES_TABLE = re.compile(r"local names = \{([^}]*)\}")
_LITERAL = re.compile(r"'([^']*)'(\s*\.\.)?")


def _call_arguments(source: str, start: int) -> str:
    """The call's own arguments (the call starting at ``start``), nested calls and tables left
    out: a literal inside them is a value (``table.concat({...}, ':')``), not a field."""
    opening = source.index("(", start)
    depth = 0
    own: list[str] = []
    for index in range(opening, len(source)):
        char = source[index]
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
            if depth == 0:
                return "".join(own)
        elif depth == 1:
            own.append(char)
    raise AssertionError(f"unbalanced call at {start}")


def fields_in_scripts(sources: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(field names, field-name prefixes) the scripts touch."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for source in sources:
        texts = [_call_arguments(source, m.start()) for m in _HASH_CALL.finditer(source)]
        texts += [m.group(1) for m in _NAMES_TABLE.finditer(source)]
        for text in texts:
            for literal in _LITERAL.finditer(text):
                name, concatenated = literal.group(1), literal.group(2)
                if name.startswith("H") and name.isupper():
                    continue  # the command itself
                (prefixes if concatenated else names).add(name)
        prefixes |= {m.group(1) for m in re.finditer(r"'(\w+)' \.\. \(?[it]\b", source)}
    return names, prefixes


def test_the_scripts_touch_exactly_the_codec_fields() -> None:
    names, prefixes = fields_in_scripts(lua.scripts())
    assert names - codec.FIELDS == set(), "fields only the scripts know"
    assert codec.FIELDS - names == set(), "fields the scripts never touch"
    assert prefixes == {codec.SLOT_PREFIX}


def test_a_field_renamed_in_a_script_only_is_found() -> None:
    """The check can fail: a script that writes ``fail`` instead of ``f``."""
    renamed = tuple(
        source.replace("redis.call('HSET', H, 'f', c.f", "redis.call('HSET', H, 'fail', c.f")
        for source in lua.scripts()
    )
    assert renamed != lua.scripts()
    names, _ = fields_in_scripts(renamed)
    assert names - codec.FIELDS == {"fail"}


def test_a_field_dropped_from_the_scripts_is_found() -> None:
    sources = tuple(source.replace("'ca', now", "") for source in lua.scripts())
    names, _ = fields_in_scripts(sources)
    assert codec.FIELDS - names == {codec.CHANGED_AT}
