"""A calendar the booking path calls over HTTP, as an application's calendar client would.

    with CalendarServer() as calendar:
        book_appointment(..., book=calendar.book)   # POST /bookings with the idempotency key
        calendar.requests                            # how many booking requests reached it

It books one slot per idempotency key (a retried request gets the booking it made the first
time), and answers 503 to every request while `down` is set. The count of requests is the
server's own: a booking the breaker refused never reaches it.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from guard.booking import CalendarBooking


class CalendarUnavailableError(ConnectionError):
    """The calendar answered with a server error."""


class CalendarServer:
    def __init__(self) -> None:
        self.requests = 0
        self.down = False
        self._bookings: dict[str, str] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # (the name http.server calls)
                length = int(self.headers.get("Content-Length", "0"))
                key = json.loads(self.rfile.read(length))["idempotency_key"]
                status, body = server._book(key)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests read the counts

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/bookings"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _book(self, key: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            if self.down:
                return 503, {"error": "calendar unavailable"}
            uid = self._bookings.setdefault(key, f"cal-{len(self._bookings) + 1}")
        return 201, {"uid": uid, "slot": "10:00"}

    def book(self, idempotency_key: str) -> CalendarBooking:
        """The application's calendar client: one POST, the booking it answers."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"idempotency_key": idempotency_key}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise CalendarUnavailableError(f"calendar answered {error.code}") from None
        return CalendarBooking(uid=body["uid"], details={"slot": body["slot"]})

    def __enter__(self) -> CalendarServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)
