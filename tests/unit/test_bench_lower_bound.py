"""The lower bound of the appointment triggers (bench/triggers.py's AT_ONCE_SQL) runs the same
statements as Booking Guard's own triggers, so that what it saves is the machinery around them
and nothing else. It copies two of them; these tests fail when a copy and its original part.
(`python -m bench.instructions --variants fa,ra,d,l` measures it.)"""

from __future__ import annotations

import re
from pathlib import Path

from bench.triggers import AT_ONCE_SQL

FUNCTIONS = Path(__file__).resolve().parents[2] / "sql" / "functions"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _between(text: str, start: str, end: str) -> str:
    found = re.search(re.escape(start) + r".*?" + re.escape(end), text, re.DOTALL)
    assert found is not None, f"{start!r} ... {end!r} not found"
    return _flat(found.group(0))


def test_the_insert_writes_the_call_as_the_insert_trigger_does() -> None:
    shipped = (FUNCTIONS / "guard.sync_flags_after_appointment_insert.sql").read_text()
    start, end = "UPDATE public.calls AS c", "WHERE"
    assert _between(AT_ONCE_SQL, start, end) == _between(shipped, start, end)


def test_the_update_tests_a_change_as_the_notes_trigger_does() -> None:
    shipped = (FUNCTIONS / "guard.note_appointment_change.sql").read_text()
    start, end = "IF\n", "THEN\n        RETURN NULL;"
    bound = AT_ONCE_SQL[AT_ONCE_SQL.index("bench.at_once_after_update") :]
    assert _between(bound, start, end) == _between(shipped, start, end)


def test_the_update_and_delete_derive_through_the_shipped_one_call_function() -> None:
    assert AT_ONCE_SQL.count("guard.sync_one_call_flags(") == 3
    assert (FUNCTIONS / "guard.sync_one_call_flags.sql").exists()
