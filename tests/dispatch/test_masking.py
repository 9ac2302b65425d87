"""Masking of phone numbers in what leaves the database: the dispatcher applies Booking Guard's one
masking rule (guard/masking.py), the rule the reporting views apply; its whole table of cases is
tests/data/masking_cases.json (tests/security/test_masking_rule.py runs it here too). Dates,
UUIDs, keys and short numbers stay; any other run of seven digits or more is masked, order
references and JSON numbers included."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from guard.cli import main
from guard.masking import mask_json, mask_phone_numbers
from tests.dispatch.conftest import insert_alerts

MASKED = [
    ("+49 30 1234567", "+49 30 ****567"),
    ("+49301234567", "+4930****567"),
    ("030 1234567", "030 ****567"),
    ("030/1234567", "030/****567"),
    ("(030) 123-4567", "(030) ***-*567"),
    ("0049 30 1234567", "0049 ** ****567"),
    ("call +4915112345678 now", "call +4915******678 now"),
    ("+1 (555) 123-4567", "+1 (555) ***-*567"),
    ("+1 555 0100", "+1 *** *100"),
    ("Rückruf an 0151 12345678 bitte", "Rückruf an 0151 *****678 bitte"),
    ("tel: 5551234567", "tel: 555****567"),
    ("Tel.-Nr. 301234567", "Tel.-Nr. 30****567"),
    ("caller 301234567 hung up", "caller 30****567 hung up"),
    # without a trunk prefix or a phone word: a run of seven digits is masked all the same
    ("order ref 20261122, caller +49 30 1234567", "order ref 2****122, caller +49 30 ****567"),
    ("calls 1234567 today", "calls ****567 today"),
    ("1234567890123456789", "*******************"),
    ("idem:7:0301234567", "idem:7:030****567"),
    # Unicode digits and the other separators the rule knows
    (
        "\uff10\uff13\uff10 \uff11\uff12\uff13\uff14\uff15\uff16\uff17",
        "\uff10\uff13\uff10 ****\uff15\uff16\uff17",
    ),
    (
        "\u0660\u0663\u0660 \u0661\u0662\u0663\u0664\u0665\u0666\u0667",
        "\u0660\u0663\u0660 ****\u0665\u0666\u0667",
    ),
    ("+49_30_1234567", "+49_30_****567"),
    ("+49,30,1234567", "+49,30,****567"),
]

KEPT = [
    "2026-11-22",
    "2026-11-22T10:15:00Z",
    "2026-11-22 10:15:00.123+01:00",
    "22.11.2026",
    "01.02.2026",
    "at 20:15:12",
    "alert #123456",
    "rate 0.25 of 12 calls",
    "550e8400-e29b-41d4-a716-446655440000",
    "book-1001-0301234567",
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_phone_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_phone_numbers(text) == masked
    assert mask_phone_numbers(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize("text", KEPT)
def test_digits_that_are_not_phone_numbers_stay(text: str) -> None:
    assert mask_phone_numbers(text) == text


def test_delivered_alert_keeps_its_date_and_key_but_not_the_number(db_url: str) -> None:
    key = "550e8400-e29b-41d4-a716-446655440000"
    insert_alerts(
        db_url,
        1,
        message="booking for order ref 20261122 on 2026-11-22 failed, caller 030 1234567",
        details={
            "idempotency_key": key,
            "booking_failure_reason": "timeout \uff0b\uff14\uff19 30_1234567",
            "call_id": 4930987654321,  # a phone number sent as a JSON number
            "recent_calls": 12,
        },
    )
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "watch", "--once", "--channel", "stdout"]
    )
    assert result.exit_code == 0, result.output
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["message"] == (
        "booking for order ref 2****122 on 2026-11-22 failed, caller 030 ****567"
    )
    assert line["details"]["idempotency_key"] == key
    assert line["details"]["booking_failure_reason"] == "timeout \uff0b\uff14\uff19 30_****567"
    assert line["details"]["call_id"] == "4930******321"
    assert line["details"]["recent_calls"] == 12
    assert "1234567" not in result.stdout and "987654" not in result.stdout


def test_mask_json_masks_strings_keys_and_numbers_and_leaves_the_rest() -> None:
    """Any mask: true, false and null are never handed to it, a number only as its JSON text."""

    def mask(text: str) -> str:
        return text.upper().replace("5", "V")

    document = {"name": "x5", "n": 5, "f": 1.5, "ok": True, "none": None, "list": [False, 7]}
    assert mask_json(document, mask) == {
        "NAME": "XV",
        "N": "V",
        "F": "1.V",
        "OK": True,
        "NONE": None,
        "LIST": [False, 7],
    }
