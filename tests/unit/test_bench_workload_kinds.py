"""`python -m bench.workload --instructions` counts every statement on its own and adds them up
per transaction by kind (bench/workload.py's _per_kind): these tests hold that grouping to the
script it counts, a transaction of several statements with its BEGIN and COMMIT."""

from __future__ import annotations

import random
import statistics
from collections import Counter

from bench.workload import _per_kind, lifecycle_script, plan_lifecycle

LIFECYCLES, SEED = 40, 3


def _plans() -> list[tuple[str, int]]:
    """(kind, statements the script runs for it) of each transaction, as lifecycle_script plans."""
    rng = random.Random(SEED)
    transactions = []
    for sequence in range(1, LIFECYCLES + 1):
        plan = plan_lifecycle(rng, sequence, f"i{SEED}-{sequence}")
        for kind, step in zip(plan.kinds, plan.steps, strict=True):
            transactions.append((kind, len(step) + 2 if len(step) > 1 else len(step)))
    return transactions


def test_each_transaction_counts_once_with_its_begin_and_commit() -> None:
    kinds: list[str] = []
    script = lifecycle_script(LIFECYCLES, SEED, {"calls": 1, "appointments": 1}, kinds)
    counted = _per_kind(kinds, script, [1] * len(script))  # one instruction per statement
    planned = _plans()
    assert any(size > 1 for _, size in planned), "no transaction of several statements"
    assert {kind: n for kind, (n, _) in counted.items()} == dict(Counter(k for k, _ in planned))
    for kind, (_, per_transaction) in counted.items():
        sizes = [size for k, size in planned if k == kind]
        assert per_transaction == statistics.mean(sizes), kind


def test_a_statement_alone_is_its_own_transaction() -> None:
    script = ["EXECUTE step0", "BEGIN", "EXECUTE step1", "EXECUTE step2", "COMMIT", "EXECUTE step3"]
    kinds = ["new call", "booking", "booking", "booking", "booking", "new call"]
    counted = _per_kind(kinds, script, [100, 1, 40, 50, 9, 300])
    assert counted == {"new call": (2, 200.0), "booking": (1, 100.0)}
