"""A flag service on 127.0.0.1 whose answers each test scripts, for the sync tests.

By default it serves its current document the way a real service does: `200` with an `ETag`, or
`304` when `If-None-Match` names that `ETag`. A test can queue one-off replies (`script`) or make
every request fail the same way (`always`), then go back to the document to see the client recover.
Everything is bounded: a hung reply holds its connection for at most `MAX_HANG` seconds, and
`close()` releases it at once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_HANG = 10.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    """Seconds to wait before answering (cut short by `close()`)."""
    hang: bool = False
    """Never answer; the connection is closed after `MAX_HANG` seconds or on `close()`."""
    send_bytes: int | None = None
    """Send only this many bytes of the body (the `Content-Length` still counts all of it), then close."""


def encode(document: Any) -> bytes:
    return document if isinstance(document, bytes) else json.dumps(document).encode()


def ok(document: Any, etag: str | None = None) -> Reply:
    headers = (("Content-Type", "application/json"),) + ((("ETag", etag),) if etag else ())
    return Reply(200, headers, encode(document))


def status(code: int, *headers: tuple[str, str]) -> Reply:
    return Reply(code, headers, b'{"error": "scripted"}')


def slow(seconds: float, reply: Reply) -> Reply:
    return Reply(reply.status, reply.headers, reply.body, delay=seconds)


def hang() -> Reply:
    return Reply(hang=True)


def truncated(document: Any, etag: str | None = None) -> Reply:
    reply = ok(document, etag)
    return Reply(reply.status, reply.headers, reply.body, send_bytes=len(reply.body) // 2)


@dataclass(frozen=True)
class Request:
    at: float
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class FlagServer:
    """`ThreadingHTTPServer` on 127.0.0.1 (a free port unless `port` is given)."""

    def __init__(self, document: Any = None, etag: str | None = '"v1"', *, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._document = None if document is None else encode(document)
        self._etag = etag
        self._script: deque[Reply] = deque()
        self._always: Reply | None = None
        self._requests: list[Request] = []
        self.released = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_document(self, document: Any, etag: str | None) -> None:
        with self._lock:
            self._document, self._etag = encode(document), etag

    def script(self, *replies: Reply) -> None:
        """Answers the next requests with these, in order, before anything else."""
        with self._lock:
            self._script.extend(replies)

    def always(self, reply: Reply | None) -> None:
        """Answers every request with `reply` (after any scripted ones); None goes back to the document."""
        with self._lock:
            self._always = reply

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        wait_until(lambda: len(self.requests) >= count, timeout, f"{count} requests")
        return self.requests

    def close(self) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self._requests.append(request)
            if self._script:
                return self._script.popleft()
            if self._always is not None:
                return self._always
            if self._document is None:
                return status(404)
            if self._etag is not None and request.header("If-None-Match") == self._etag:
                return Reply(304, (("ETag", self._etag),))
            return ok(self._document, self._etag)


def _handler(server: FlagServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = server._next_reply(Request(time.monotonic(), self.path, dict(self.headers.items())))
            if reply.hang:
                server.released.wait(MAX_HANG)
                self.close_connection = True
                return
            if reply.delay and server.released.wait(reply.delay):
                return
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.status != 304:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            body = reply.body if reply.send_bytes is None else reply.body[: reply.send_bytes]
            if reply.status != 304:
                self.wfile.write(body)
            self.wfile.flush()
            if reply.send_bytes is not None:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def free_port() -> int:
    """A port nothing listens on (nothing else on this machine is expected to grab it right away)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(probe: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Polls `probe` every 10 ms until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
