"""A real HTTP webhook receiver and a real SMTP server on 127.0.0.1, both able to fail on
demand, and helpers to fill the alert outbox."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from guard.demo.embedded import free_port

ALERT_ID = re.compile(r"alert #(\d+)|#(\d+)")


def insert_alerts(
    url: str,
    n: int,
    *,
    details: dict[str, Any] | None = None,
    message: str = "booked but no appointment",
    check: str = "booked_without_appointment",
) -> list[int]:
    """n open alerts in one statement (so one NOTIFY), ids in order."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "INSERT INTO guard.alerts (fingerprint, check_id, company_id, entity_type, entity_id,"
            " severity, message, details)"
            " SELECT 'test:' || g || ':' || clock_timestamp(), %s, 7,"
            " 'call', 1000 + g, 'high', %s, %s::jsonb FROM generate_series(1, %s) AS g"
            " RETURNING id",
            (check, message, json.dumps(details or {"appointment_made": True}), n),
        ).fetchall()
    return [int(r[0]) for r in rows]


def delivery_rows(url: str, channel: str) -> dict[int, tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT subject, status, attempts, next_attempt_at - now(), last_error, claimed_by"
            " FROM guard.deliveries WHERE kind = 'alert' AND channel = %s",
            (channel,),
        ).fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll until condition() holds; fail the test after timeout_s. Returns the time taken."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def ids_in(text: str) -> list[int]:
    return [int(a or b) for a, b in ALERT_ID.findall(text)]


@dataclass
class Webhook:
    port: int
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    fail_next: int = 0  # answer HTTP 500 to this many requests
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/secret-token"

    def delivered_ids(self) -> list[int]:
        """Alert ids of every successfully answered message, in order (summaries list many)."""
        with self.lock:
            return [i for b in self.bodies for i in ids_in(b["text"])]


def _handler(hook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hook.delay_s:
                time.sleep(hook.delay_s)
            with hook.lock:
                failing = hook.fail_next > 0
                if failing:
                    hook.fail_next -= 1
                    hook.statuses.append(500)
                else:
                    hook.bodies.append(json.loads(body))
                    hook.statuses.append(200)
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def start_webhook() -> Iterator[Callable[[int], Webhook]]:
    """Start a webhook receiver on a given port (0: any)."""
    servers: list[ThreadingHTTPServer] = []

    def start(port: int = 0) -> Webhook:
        hook = Webhook(port=port)
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(hook))
        hook.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return hook

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook(start_webhook: Callable[[int], Webhook]) -> Webhook:
    return start_webhook(0)


@dataclass
class Mailbox:
    port: int
    messages: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer 451 to DATA this many times

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        self.messages.append(envelope.content.decode("utf8", errors="replace"))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
