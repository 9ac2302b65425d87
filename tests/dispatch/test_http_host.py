"""The Host a webhook request names: the URL's host, with its port only when that is not the
scheme's default (guard.ops.dispatch.sinks._host). No server needed."""

from __future__ import annotations

import pytest

from guard.ops.dispatch.sinks import HttpTarget, _host, check_http_url


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://hooks.example.org/x", "hooks.example.org"),
        ("https://hooks.example.org:443/x", "hooks.example.org"),
        ("https://hooks.example.org:8443/x", "hooks.example.org:8443"),
        ("http://hooks.example.org/x", "hooks.example.org"),
        ("http://hooks.example.org:80/x", "hooks.example.org"),
        ("http://hooks.example.org:443/x", "hooks.example.org:443"),
        ("http://[2001:db8::1]:8080/x", "[2001:db8::1]:8080"),
        ("https://[2001:db8::1]/x", "[2001:db8::1]"),
    ],
)
def test_the_host_names_its_port_only_when_not_the_default(url: str, host: str) -> None:
    assert _host(check_http_url(url, "webhook")) == host


def test_a_default_port_computed_at_run_time_is_still_the_default() -> None:
    # the port as a parsed number, not the same object as the constant it equals
    port = int("443")
    assert _host(HttpTarget("https", "example.org", port, "/", None)) == "example.org"
