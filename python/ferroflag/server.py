"""A small flag service: serves one flag file over HTTP for ferroflag's sync clients.

`GET /api/flags` returns the file's bytes with a strong ETag (the SHA-256 of those bytes) and answers
`304 Not Modified` when `If-None-Match` carries it; the body is gzipped when the client accepts gzip
(that representation's ETag ends in `-gzip`; either ETag revalidates). `GET /healthz` reports what is
being served. The file is validated with `FlagEvaluator` before it is served and polled for changes;
an edit that does not validate is logged (logger `ferroflag.server`) and the last good document keeps
being served. One access-log line per request goes to the `ferroflag.server.access` logger.

    service = FlagService("flags.json", port=0)   # binds now; service.url is known
    service.start()                                # serve and watch in background threads
    ...
    service.close()                                # graceful: finishes in-flight requests

`run(service)` does the same in the foreground until SIGINT or SIGTERM (that is `ferroflag serve`).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from ferroflag import FlagEvaluator, __version__

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ACCESS_LOGGER",
    "FLAGS_PATH",
    "HEALTH_PATH",
    "LOGGER",
    "FlagDocument",
    "FlagService",
    "run",
]

LOGGER = "ferroflag.server"
ACCESS_LOGGER = "ferroflag.server.access"
FLAGS_PATH = "/api/flags"
HEALTH_PATH = "/healthz"

logger = logging.getLogger(LOGGER)
access_logger = logging.getLogger(ACCESS_LOGGER)

#: A file whose mtime is this close to the moment it was read may change again within the same
#: timestamp tick, so it is re-read (and re-hashed) on the next poll even if its stat looks the same.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FlagDocument:
    """One validated flag document, ready to serve."""

    body: bytes
    #: The gzip representation, or None when compressing does not make it smaller.
    gzip_body: bytes | None
    sha256: str
    flags: int
    warnings: tuple[str, ...]
    #: 1 for the document served at start, +1 per reload.
    generation: int
    loaded_at: float

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'

    @property
    def gzip_etag(self) -> str:
        return f'"{self.sha256}-gzip"'

    @classmethod
    def build(cls, body: bytes, generation: int, digest: str | None = None) -> FlagDocument:
        """Validates `body` as the evaluator would and prepares it for serving.

        Raises:
            ConfigError: The document is rejected.
        """
        evaluator = FlagEvaluator()
        evaluator.update_json(body)
        packed = gzip.compress(body, compresslevel=6, mtime=0)
        return cls(
            body=body,
            gzip_body=packed if len(packed) < len(body) else None,
            sha256=digest or hashlib.sha256(body).hexdigest(),
            flags=len(evaluator),
            warnings=tuple(str(w) for w in evaluator.warnings),
            generation=generation,
            loaded_at=time.time(),
        )


def _accepts_gzip(header: str | None) -> bool:
    """Whether an `Accept-Encoding` header allows gzip (a `q=0` refuses it)."""
    if not header:
        return False
    gzip_q: float | None = None
    star_q: float | None = None
    for part in header.split(","):
        name, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            pname, _, value = param.partition("=")
            if pname.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        coding = name.strip().lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


def _etag_matches(header: str, etags: tuple[str, ...]) -> bool:
    """`If-None-Match` uses the weak comparison: `W/` prefixes are ignored."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/")
        if tag in etags:
            return True
    return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Pollers come in bursts; the default backlog of 5 drops connections under load.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: FlagService) -> None:
        self.service = service
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() also resolves the host's FQDN, which can stall on a reverse DNS
        # lookup; the name is used nowhere here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"ferroflag/{__version__}"
    sys_version = ""
    #: Seconds an idle keep-alive connection may wait for its next request.
    timeout = 30

    @property
    def service(self) -> FlagService:
        server = self.server
        assert isinstance(server, _Server)
        return server.service

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.service._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.service._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _not_allowed(self) -> None:
        started = time.perf_counter()
        self.close_connection = True  # a request body we will not read may follow
        size = self._respond(
            HTTPStatus.METHOD_NOT_ALLOWED, _json_body({"error": "method not allowed"}), {"Allow": "GET, HEAD"}
        )
        self._log_access(HTTPStatus.METHOD_NOT_ALLOWED, size, started)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _dispatch(self, head: bool) -> None:
        started = time.perf_counter()
        with self.service._in_flight():
            path = urlsplit(self.path).path
            if path == FLAGS_PATH:
                status, size = self._flags(head)
            elif path == HEALTH_PATH:
                status = HTTPStatus.OK
                size = self._respond(status, _json_body(self.service.health()), {"Cache-Control": "no-store"}, head)
            else:
                status = HTTPStatus.NOT_FOUND
                size = self._respond(status, _json_body({"error": "not found", "flags": FLAGS_PATH}), {}, head)
        self._log_access(status, size, started)

    def _flags(self, head: bool) -> tuple[HTTPStatus, int]:
        doc = self.service.document
        use_gzip = doc.gzip_body is not None and _accepts_gzip(self.headers.get("Accept-Encoding"))
        etag = doc.gzip_etag if use_gzip else doc.etag
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, (doc.etag, doc.gzip_etag)):
            return HTTPStatus.NOT_MODIFIED, self._respond(HTTPStatus.NOT_MODIFIED, None, headers, head)
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        body = doc.gzip_body if use_gzip and doc.gzip_body is not None else doc.body
        return HTTPStatus.OK, self._respond(HTTPStatus.OK, body, headers, head, "application/json")

    def _respond(
        self,
        status: HTTPStatus,
        body: bytes | None,
        headers: dict[str, str],
        head: bool = False,
        content_type: str = "application/json",
    ) -> int:
        """Sends a whole response; returns the number of body bytes sent."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if self.service.stopping:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body is None or head:
            return 0
        self.wfile.write(body)
        return len(body)

    def _log_access(self, status: int, size: int, started: float) -> None:
        access_logger.info(
            '%s "%s" %d %d %.1fms',
            self.client_address[0],
            self.requestline,
            status,
            size,
            (time.perf_counter() - started) * 1000,
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Access lines are written by `_log_access`, with the size and duration."""

    def log_error(self, format: str, *args: Any) -> None:
        # Malformed requests and timeouts: still one access-log line each.
        access_logger.warning("%s %s", self.client_address[0], format % args)

    def log_message(self, format: str, *args: Any) -> None:
        access_logger.info("%s %s", self.client_address[0], format % args)


def _json_body(data: object) -> bytes:
    return json.dumps(data, indent=2).encode() + b"\n"


class FlagService:
    """Serves one flag file over HTTP and re-reads it when it changes.

    The constructor reads and validates the file and binds the socket, so a broken file or a busy port
    fails right away, and `url` is known (also with `port=0`). `start()` begins serving and watching;
    `close()` stops both, letting in-flight requests finish (up to `shutdown_grace` seconds).

    Arguments:
        path: The flag file.
        host: The address to listen on; an IPv6 address listens on IPv6.
        port: The port; 0 lets the system pick a free one.
        poll_interval: Seconds between checks of the file for changes.
        shutdown_grace: Seconds `close()` waits for in-flight requests.

    Raises:
        ConfigError: The file is not a valid flag document.
        OSError: The file cannot be read, or the address cannot be bound.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        poll_interval: float = 1.0,
        shutdown_grace: float = 5.0,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        self.path = Path(path)
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._last_error: str | None = None
        self._rejected: str | None = None  # hash of the last content that failed, so it is logged once
        stat = os.stat(self.path)
        body = self.path.read_bytes()
        self._document = FlagDocument.build(body, generation=1)
        self._seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        self._racy = time.time_ns() - stat.st_mtime_ns < _RACY_NS
        self._log_loaded("loaded")
        self._server = _Server((host, port), self)

    # -- what is served

    @property
    def document(self) -> FlagDocument:
        """The document being served (the last good one)."""
        return self._document

    @property
    def last_error(self) -> str | None:
        """Why the file's current content is not served, or None when it is."""
        return self._last_error

    @property
    def url(self) -> str:
        """The service's base URL, e.g. `http://127.0.0.1:8080`; the flags are at `url + FLAGS_PATH`."""
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def flags_url(self) -> str:
        return self.url + FLAGS_PATH

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def serving(self) -> bool:
        """Whether the HTTP server thread is running."""
        return bool(self._threads) and self._threads[0].is_alive()

    def health(self) -> dict[str, Any]:
        doc = self._document
        return {
            "status": "ok" if self._last_error is None else "stale",
            "file": str(self.path),
            "flags": doc.flags,
            "etag": doc.etag,
            "generation": doc.generation,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(doc.loaded_at)),
            "last_error": self._last_error,
        }

    # -- watching the file

    def check(self) -> bool:
        """Re-reads the file if it changed. Returns True when a new document is now served.

        A file that cannot be read or does not validate leaves the served document as it is; the reason
        is logged (once per distinct content) and kept in `last_error`.
        """
        with self._check_lock:
            return self._check()

    def _check(self) -> bool:
        try:
            stat = os.stat(self.path)
        except OSError as error:
            return self._reject(f"cannot read {self.path}: {error.strerror or error}", key=f"stat:{error.errno}")
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen == self._seen and not self._racy and self._last_error is None:
            return False
        try:
            body = self.path.read_bytes()
            after = os.stat(self.path)
        except OSError as error:
            return self._reject(f"cannot read {self.path}: {error.strerror or error}", key=f"read:{error.errno}")
        if (after.st_mtime_ns, after.st_size, after.st_ino) != seen:
            return False  # still being written: look again on the next poll
        self._seen = seen
        self._racy = time.time_ns() - stat.st_mtime_ns < _RACY_NS
        digest = hashlib.sha256(body).hexdigest()
        if digest == self._document.sha256:
            if self._last_error is not None:
                logger.info("%s: back to the document being served (etag %s)", self.path, self._document.etag)
                self._last_error = None
                self._rejected = None
            return False
        if digest == self._rejected:
            return False
        try:
            document = FlagDocument.build(body, self._document.generation + 1, digest)
        except ValueError as error:  # ConfigError is a ValueError
            return self._reject(str(error), key=digest)
        self._document = document
        self._last_error = None
        self._rejected = None
        self._log_loaded("reloaded")
        return True

    def _reject(self, reason: str, key: str) -> bool:
        if key != self._rejected:
            logger.error(
                "%s: %s; still serving the last good document (etag %s, %d flags)",
                self.path,
                reason,
                self._document.etag,
                self._document.flags,
            )
        self._rejected = key
        self._last_error = reason
        return False

    def _log_loaded(self, verb: str) -> None:
        doc = self._document
        flags = "1 flag" if doc.flags == 1 else f"{doc.flags} flags"
        logger.info("%s %s: %s, etag %s", verb, self.path, flags, doc.etag)
        for warning in doc.warnings:
            logger.warning("%s: %s", self.path, warning)

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise
                logger.exception("%s: unexpected error while checking for changes", self.path)

    # -- lifecycle

    def start(self) -> None:
        """Serves and watches in background threads; returns at once."""
        if self._threads or self._closed:
            raise RuntimeError("FlagService.start() may be called once")
        # serve_forever() checks for shutdown between waits of this many seconds: it bounds close()'s latency.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.1)
        for target, name in ((serve, "ferroflag-serve"), (self._watch, "ferroflag-watch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stops accepting connections, waits for in-flight requests (up to `shutdown_grace` seconds),
        closes idle keep-alive connections and stops the watcher. Safe to call more than once.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._threads:
            self._server.shutdown()
        deadline = time.monotonic() + self.shutdown_grace
        with self._idle:
            while self._active and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)
            connections = list(self._connections)
        self._server.server_close()
        for connection in connections:  # idle keep-alive connections: wake their threads up
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=self.shutdown_grace)

    def __enter__(self) -> Self:
        if not self._threads:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def run(service: FlagService, out: TextIO | None = None) -> int:
    """Serves until SIGINT or SIGTERM, then shuts down gracefully; returns the exit code (0).

    Prints `ferroflag: serving FILE at URL` (URL ends in `/api/flags`) to `out` (stdout) once the
    service accepts connections. Signal handlers are installed only when called from the main thread.
    """
    out = out if out is not None else sys.stdout
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        service.start()
        print(f"ferroflag: serving {service.path} at {service.flags_url}", file=out, flush=True)
        while not stop.wait(0.5):
            if not service.serving:
                logger.error("the HTTP server thread stopped unexpectedly")
                break
        name = signal.Signals(received[0]).name if received else "stop"
        logger.info("%s received: shutting down", name)
    finally:
        service.close()
        for prev_sig, handler in previous.items():
            signal.signal(prev_sig, handler)
    logger.info("stopped")
    return 0
