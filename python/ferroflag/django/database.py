"""`DatabaseSource`: the `ferroflag` tables' flags, current in every process (`FERROFLAG = {"DATABASE": "default"}`).

Each process runs one daemon thread that reads `Revision.number` (one primary-key row) every `INTERVAL`
seconds and reloads the document only when it moved. Polling was chosen over PostgreSQL LISTEN/NOTIFY:
it works on every database Django supports (SQLite in development, PostgreSQL and MySQL in production),
and through transaction-pooling proxies such as PgBouncer, where LISTEN needs a server connection pinned
to each worker: the thread's own connection sits idle in autocommit between reads, holding no transaction
(behind such a proxy, no server connection either). Its cost is one indexed read per process per
interval, and a change reaches every process within `INTERVAL` plus one load. The process that saves a
change does not wait: it reloads as the transaction commits (see `ferroflag.django.store`).

A failing read (the database is down, the tables are missing) keeps the last good flags; `status()` is
then `stale` with the error. A document the engine rejects (a row edited by hand in SQL) is not applied
either, and shows the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from ferroflag import ConfigError, FlagEvaluator
from ferroflag.django import store

__all__ = ["DatabaseSource", "DatabaseStatus"]

DEFAULT_INTERVAL = 1.0
_ERROR_LIMIT = 300  # characters of an error kept in the status


@dataclass(frozen=True)
class DatabaseStatus:
    """`DatabaseSource.status()`: a `ferroflag.sources.SourceStatus`."""

    ready: bool
    running: bool
    stale: bool
    source: str
    last_error: str | None
    consecutive_failures: int
    revision: int
    """The `Revision.number` the flags served were loaded at (0 before the first load)."""
    snapshot_version: int
    """The evaluator version this source last published."""
    last_success: float | None
    last_attempt: float | None
    database: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _describe(exc: BaseException) -> str:
    # Database errors name the host and port at most, never the password; keep them short all the same.
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


_running: weakref.WeakSet[DatabaseSource] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Threads do not survive fork(): a worker forked from a process that was polling polls on its own.
    for source in list(_running):
        source._restart_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


class DatabaseSource:
    """Keeps `evaluator` current from the `ferroflag` tables of database `using`.

    Arguments:
        evaluator: The evaluator to publish to.
        using: The database alias.
        interval: Seconds between two reads of the revision.
    """

    def __init__(
        self, evaluator: FlagEvaluator, *, using: str = DEFAULT_DB_ALIAS, interval: float = DEFAULT_INTERVAL
    ) -> None:
        if not (interval > 0):
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.evaluator = evaluator
        self.using = using
        self.interval = float(interval)
        self._load_lock = threading.Lock()  # one read-and-apply at a time (poll thread and saving threads)
        self._state_lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._revision = 0
        self._version = 0
        self._failures = 0
        self._last_error: str | None = None
        self._last_success: float | None = None
        self._last_attempt: float | None = None
        self._rejected_revision: int | None = None

    # --- FlagSource ------------------------------------------------------------------------------

    def start(self, wait: float = 2.0) -> bool:
        """Starts the poll thread (idempotent) and waits up to `wait` seconds for the first load."""
        with self._state_lock:
            if self._thread is None or not self._thread.is_alive():
                self._spawn()
        return self._ready.wait(max(0.0, wait)) if wait > 0 else self._ready.is_set()

    async def start_async(self, wait: float = 2.0) -> bool:
        """`start()` off the event loop."""
        return await asyncio.to_thread(self.start, wait)

    def wait_ready(self, timeout: float) -> bool:
        if self._ready.is_set():
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        return self._ready.wait(max(0.0, timeout))

    def stop(self) -> bool:
        """Stops polling (idempotent); waits for the thread up to one read's time."""
        with self._state_lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            _running.discard(self)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10.0)
            return not thread.is_alive()
        return True

    def status(self) -> DatabaseStatus:
        with self._state_lock:
            running = self._thread is not None and self._thread.is_alive()
            return DatabaseStatus(
                ready=self._ready.is_set(),
                running=running,
                stale=self._ready.is_set() and self._failures > 0,
                source="database" if self._ready.is_set() else "none",
                last_error=self._last_error,
                consecutive_failures=self._failures,
                revision=self._revision,
                snapshot_version=self._version,
                last_success=self._last_success,
                last_attempt=self._last_attempt,
                database=self.using,
            )

    # --- loading ---------------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> bool:
        """Reads the revision now and reloads if it moved (or with `force`), in the calling thread.

        Returns:
            Whether a new document was applied. Never raises for a database or document problem: the
            last good flags stay and the problem shows in `status()`.
        """
        with self._load_lock:
            self._last_attempt = time.time()
            try:
                number = store.revision(self.using)
                if self._ready.is_set() and number == self._revision and not force:
                    self._succeeded()
                    return False
                if number == self._rejected_revision and not force:
                    return False  # already refused that one; wait for the next change
                snapshot = store.read_snapshot(self.using)
                try:
                    self.evaluator.update_json(snapshot.json())
                except ConfigError as exc:
                    self._rejected_revision = snapshot.revision
                    self._failed(f"revision {snapshot.revision} was not applied: {exc}")
                    return False
            except Exception as exc:
                self._failed(_describe(exc))
                self._drop_connection()
                return False
            with self._state_lock:
                self._revision = snapshot.revision
                self._version = self.evaluator.version
                self._rejected_revision = None
            self._succeeded()
            self._ready.set()
            return True

    def _succeeded(self) -> None:
        with self._state_lock:
            self._failures = 0
            self._last_error = None
            self._last_success = time.time()

    def _failed(self, error: str) -> None:
        with self._state_lock:
            self._failures += 1
            self._last_error = error[:_ERROR_LIMIT]

    def _drop_connection(self) -> None:
        # The next read reconnects (a broken connection would fail every read after an outage).
        with contextlib.suppress(Exception):  # closing a dead connection may fail too; nothing to keep
            connections[self.using].close()

    def _spawn(self) -> None:
        self._stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(self._stop,), name="ferroflag-db", daemon=True)
        self._thread = thread
        _running.add(self)
        thread.start()

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.refresh()
                stop.wait(self.interval)
        finally:
            # This thread's own connection: Django opens one per thread and only closes request threads'.
            connections.close_all()

    def _restart_in_child(self) -> None:
        self._load_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._spawn()
