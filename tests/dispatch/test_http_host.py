"""The Host a webhook request names: the URL's host, with its port only when that is not the
scheme's default (guard.ops.dispatch.sinks.check_http_url). No server needed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from guard.ops.dispatch.sinks import check_http_url


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
    assert urlsplit(check_http_url(url, "webhook").url).netloc == host


def test_a_default_port_computed_at_run_time_is_still_the_default() -> None:
    # the port as a parsed number, not the same object as the constant it equals
    port = int("443")
    assert check_http_url(f"https://example.org:{port}/", "webhook").url == "https://example.org/"


def test_credentials_leave_the_url_for_the_authorization_header() -> None:
    target = check_http_url("https://user:pw@am.example.org/base/?a=1", "am", "/api/v2/alerts")
    assert target.url == "https://am.example.org/base/api/v2/alerts?a=1"
    assert target.authorization == "Basic dXNlcjpwdw=="
