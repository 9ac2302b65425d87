"""guard.mask_phone: the first digits (at most four, while seven are left) and the last three stay,
at least four digits are hidden (Booking Guard's one rule: tests/security/test_masking_rule.py)."""

from __future__ import annotations

import psycopg
import pytest


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+49 30 1234567", "+49 30 ****567"),
        ("+49301234567", "+4930****567"),
        ("+1 555 0100", "+1 *** *100"),
        ("+49 30 123 456", "+49 3* *** 456"),
        ("(030) 1234567", "(030) ****567"),
        ("030 1234", "*** *234"),
        ("  +44 20 79460000 ", "+44 20 *****000"),
        ("12345", "***"),
        ("anonymous", "***"),
        ("", "***"),
        ("+49 30 12ab567", "***"),
        (None, None),
    ],
)
def test_mask_phone(
    conn: psycopg.Connection[tuple[object, ...]], phone: str | None, masked: str | None
) -> None:
    row = conn.execute("SELECT guard.mask_phone(%s)", (phone,)).fetchone()
    assert row is not None
    assert row[0] == masked
    if phone and masked:
        digits = [c for c in phone if c.isdigit()]
        hidden = masked.count("*")
        assert masked == "***" or (hidden >= 4 and len(masked) == len(phone.strip()))
        assert masked == "***" or masked.endswith("".join(digits[-3:]))
