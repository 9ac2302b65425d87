"""Real receivers that misbehave the way production endpoints do: an HTTP server that redirects,
trickles its answer, rate-limits or wants basic auth, and an SMTP server that takes the mail and
then fails QUIT. All bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from guard.demo.embedded import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the server answers: status, headers, body, and the pause before each byte
    (trickle_s > 0: the whole answer, status line included, one byte at a time; with
    trickle_body_only only the body is trickled, after a prompt status line and headers)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    trickle_s: float = 0.0
    trickle_body_only: bool = False


@dataclass
class Endpoint:
    port: int
    answer: Callable[[Received], Reply]
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def posts(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            with endpoint.lock:
                endpoint.requests.append(request)
            reply = endpoint.answer(request)
            head = f"HTTP/1.1 {reply.status} X\r\n".encode()
            headers = {**reply.headers, "Content-Length": str(len(reply.body))}
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"
            try:
                if reply.trickle_s and not reply.trickle_body_only:
                    self._trickle(head + reply.body, reply.trickle_s)
                elif reply.trickle_s:
                    self.wfile.write(head)
                    self.wfile.flush()
                    self._trickle(reply.body, reply.trickle_s)
                else:
                    self.wfile.write(head + reply.body)
            except OSError:
                pass  # the client gave up (its deadline): nothing to finish
            self.close_connection = True

        def _trickle(self, data: bytes, pause: float) -> None:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(pause)

        do_POST = _any
        do_GET = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def endpoint(answer: Callable[[Received], Reply]) -> Iterator[Endpoint]:
    hook = Endpoint(0, answer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class QuitFailingMailbox:
    """Takes every mail (250 after DATA), then answers QUIT with 421."""

    port: int
    messages: list[str] = field(default_factory=list)
    quits: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode("utf8", errors="replace"))
        return "250 OK queued"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "421 4.3.2 service shutting down"


@contextmanager
def quit_failing_smtp() -> Iterator[QuitFailingMailbox]:
    box = QuitFailingMailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
