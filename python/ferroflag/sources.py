"""The one notion of a flag source that every adapter (FastAPI, Django, OpenFeature, the testing helpers) accepts.

A flag source keeps a `FlagEvaluator` current from somewhere: the service (`FlagSyncClient`), a local file
(`FlagFileWatcher`), or anything an app writes itself (a database, say) with the same lifecycle. The native
sources fit `FlagSource` as they are; a Python source needs only these five methods and a `status()` that fits
`SourceStatus`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

__all__ = ["FlagSource", "SourceStatus"]


class SourceStatus(Protocol):
    """What a source's `status()` reports; `ferroflag.SyncStatus` (the native sources') fits, and a Python
    source may return any object with these read-only attributes."""

    @property
    def ready(self) -> bool:
        """A snapshot has been applied."""

    @property
    def running(self) -> bool:
        """The source is started and keeping the evaluator current."""

    @property
    def stale(self) -> bool:
        """Ready, but failing since: the flags served may be out of date."""

    @property
    def source(self) -> str:
        """Where the last applied snapshot came from (`none`, `network`, `cache`, `file`, or a Python source's own
        word such as `database`)."""

    @property
    def last_error(self) -> str | None:
        """The last failure, bounded in length and free of secrets."""

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success; 0 while healthy."""

    def to_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict, e.g. for a health endpoint."""


@runtime_checkable
class FlagSource(Protocol):
    """Something that keeps an evaluator's flags current, with one lifecycle.

    - `start(wait)` begins (idempotent) and waits at most `wait` seconds for the first snapshot; it
      never raises because the origin is down, and returns whether a snapshot has been applied.
    - `start_async(wait)` is `start()` for an event loop: it never blocks the loop.
    - `wait_ready(timeout)` waits for the first snapshot; False at once when not running.
    - `stop()` is idempotent, prompt, and applies nothing afterwards; True when fully stopped.
    - `status()` is a copy of the state now, safe to log or serve (no secret is ever in it).
    """

    def start(self, wait: float = ...) -> bool: ...
    def start_async(self, wait: float = ...) -> Awaitable[bool]: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def stop(self) -> bool: ...
    def status(self) -> SourceStatus: ...
