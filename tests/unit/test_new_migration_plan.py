"""The parts of `make migration` that decide how a changed function is written, on the catalog's
own text (the end-to-end runs against PostgreSQL are tests/db/test_new_migration.py)."""

from __future__ import annotations

from guard.db.new_migration import _creation_order, _identity, _reshaped


def _function(returns: str) -> dict[str, str]:
    return {"definition": f"CREATE OR REPLACE FUNCTION f()\n RETURNS {returns}\n LANGUAGE sql\n"}


def test_identity_is_the_argument_types_without_names_defaults_or_out_parameters() -> None:
    assert _identity("guard.f(a text, OUT b integer)") == "guard.f(text)"
    assert _identity("guard.g(since timestamp with time zone, n double precision DEFAULT 1)") == (
        "guard.g(timestamp with time zone, double precision)"
    )
    assert _identity("guard.h(text, anyelement)") == "guard.h(text, anyelement)"
    assert _identity("guard.v(VARIADIC ids bigint[])") == "guard.v(bigint[])"
    assert _identity("guard.n()") == "guard.n()"


def test_a_renamed_parameter_and_a_new_result_are_reshaped_a_new_body_is_not() -> None:
    before = {
        "guard.a(alert_rule text)": _function("integer"),
        "guard.b()": _function("TABLE(rule_id text)"),
        "guard.c()": _function("integer"),
        "guard.d(x text)": _function("integer"),
    }
    after = {
        "guard.a(alert_check text)": _function("integer"),
        "guard.b()": _function("TABLE(check_id text, rule_id text)"),
        "guard.c()": {"definition": _function("integer")["definition"] + " -- new body"},
        "guard.d(x text, y text)": _function("integer"),  # an overload: a new function
    }
    assert _reshaped(before, after) == {
        "guard.a(alert_rule text)": "guard.a(alert_check text)",
        "guard.b()": "guard.b()",
    }


def test_a_function_is_created_after_the_functions_it_calls() -> None:
    bodies = {
        "guard.check_call(call_id bigint)": "SELECT * FROM guard.run_detection(NULL, call_id)",
        "guard.detect()": "SELECT d.check_id FROM guard.run_detection(now(), NULL) AS d",
        "guard.run_detection(since timestamp with time zone, only_call bigint)": "plpgsql body",
        "guard.detect_between(since timestamp with time zone, until timestamp with time zone)": (
            "no call of another"
        ),
    }
    order = _creation_order(bodies)
    first = order.index("guard.run_detection(since timestamp with time zone, only_call bigint)")
    assert first < order.index("guard.detect()")
    assert first < order.index("guard.check_call(call_id bigint)")
    # a name is matched with its parenthesis: calling guard.detect_between is no call of
    # guard.detect, so guard.a() keeps its place in the name order, before guard.detect()
    assert _creation_order(
        {"guard.detect()": "SELECT 1", "guard.a()": "SELECT guard.detect_between(now(), now())"}
    ) == ["guard.a()", "guard.detect()"]
