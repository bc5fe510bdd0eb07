"""Exposure events: who was served which variant of a tracked flag (docs/spec.md §8, "Exposures").

A flag opts in with `"metadata": {"track": true}`; an evaluator starts recording with a sink:

    def send(batch: list[Exposure]) -> None:
        analytics.track_many({"flag": e.flag, "variant": e.variant, "user": e.subject} for e in batch)

    stream = evaluator.on_exposure(send)

Every answer of a tracked flag (`is_enabled`, `evaluate`, `get_value`, `get_variant`, `evaluate_all`,
`is_enabled_many`, and the adapters built on them) is an exposure `(flag, variant, reason, subject,
snapshot, timestamp)`, where `subject` is the context's bucketing value for that flag. The evaluation
only fingerprints it and, when the fingerprint is new to a bounded window, puts it on a bounded native
queue: it never waits for the sink, and an exposure that finds the queue full is counted in
`stats().dropped`. A thread of this module takes batches off the queue (when `batch_size` are waiting or
every `interval` seconds) and calls the sink with them. A sink that raises is logged (to the `ferroflag`
logger, at most once a minute) and keeps receiving. Untracked flags cost nothing.

Deduplication: the same (flag, variant, subject, snapshot) is one exposure while it stays in the window
(`window` recent fingerprints), so a user who asks for a flag on every request of a session is counted
once, and again after the flags change. After `os.fork()` the child starts with an empty queue and window
and its own thread; at interpreter exit the queue is flushed to the sink.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ferroflag import FlagEvaluator

__all__ = ["Exposure", "ExposureSink", "ExposureStats", "ExposureStream"]

_logger = logging.getLogger("ferroflag")
_ERROR_LOG_INTERVAL = 60.0


class Exposure(NamedTuple):
    """One answer of a tracked flag for one subject."""

    flag: str
    variant: str
    """`""` for a flag without variants."""
    reason: str
    subject: str
    """The context's bucketing value for the flag (`bucket_by`; the user id by default)."""
    snapshot: int
    """The evaluator version that answered: the same subject is exposed again after a change."""
    timestamp: float
    """Seconds since the Unix epoch."""


ExposureSink = Callable[[list[Exposure]], object]
"""Receives each batch of exposures, on the stream's thread (or the caller of `flush()`)."""


@dataclass(frozen=True)
class ExposureStats:
    """Counts since the stream started (or since a fork, in a child)."""

    recorded: int
    """Exposures queued."""
    deduplicated: int
    """Answers the window had seen already: not exposures again."""
    dropped: int
    """New exposures left out because the queue was full."""
    queued: int
    """Exposures waiting for the sink now."""
    delivered: int
    """Exposures handed to the sink (including batches the sink raised on)."""
    sink_errors: int
    """Batches on which the sink raised."""


class ExposureStream:
    """Delivers one evaluator's exposures to its sinks; made by `FlagEvaluator.on_exposure()`."""

    def __init__(
        self,
        evaluator: FlagEvaluator,
        *,
        batch_size: int,
        interval: float,
        capacity: int,
        window: int,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("capacity", capacity), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise TypeError(f"interval must be a number of seconds, got {type(interval).__name__}")
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self._evaluator = evaluator
        self._interval = float(interval)
        self._sinks: list[ExposureSink] = []
        self._delivering = threading.Lock()
        self._stopping = threading.Event()
        self._delivered = 0
        self._sink_errors = 0
        self._last_error_log = -_ERROR_LOG_INTERVAL
        evaluator._exposures_enable(capacity, batch_size, window)
        self._thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="ferroflag-exposures", daemon=True)
        thread.start()
        return thread

    def add_sink(self, sink: ExposureSink) -> None:
        if not callable(sink):
            raise TypeError(f"sink must be callable, got {type(sink).__name__}")
        self._sinks.append(sink)

    def _run(self) -> None:
        while not self._stopping.is_set():
            batch = self._evaluator._exposures_take(self._interval)
            if batch:
                with self._delivering:
                    self._deliver(batch)

    def _deliver(self, raw: list[tuple[str, str, str, str, int, float]]) -> None:
        batch = [Exposure._make(item) for item in raw]
        self._delivered += len(batch)
        for sink in list(self._sinks):
            try:
                sink(batch)
            except Exception:
                self._sink_errors += 1
                now = time.monotonic()
                if now - self._last_error_log >= _ERROR_LOG_INTERVAL:
                    self._last_error_log = now
                    _logger.exception(
                        "ferroflag: an exposure sink raised on a batch of %d (%d batches so far); it keeps receiving",
                        len(batch),
                        self._sink_errors,
                    )

    def flush(self) -> int:
        """Hands every exposure waiting now to the sinks, in this thread.

        Returns:
            How many were delivered.
        """
        with self._delivering:
            batch = self._evaluator._exposures_take(0.0)
            if batch:
                self._deliver(batch)
            return len(batch)

    def close(self, timeout: float = 5.0) -> None:
        """Stops the thread and flushes what is left. Idempotent; done at interpreter exit. The
        evaluator keeps recording into its queue; a later `on_exposure()` starts a new stream on it."""
        self._stopping.set()
        self._evaluator._exposures_wake()
        self._thread.join(timeout)
        self.flush()
        with _streams_lock:
            if _streams.get(id(self._evaluator)) is self:
                del _streams[id(self._evaluator)]

    def stats(self) -> ExposureStats:
        native = self._evaluator._exposures_stats() or (0, 0, 0, 0)
        recorded, deduplicated, dropped, queued = native
        return ExposureStats(recorded, deduplicated, dropped, queued, self._delivered, self._sink_errors)

    def _after_fork_in_child(self) -> None:
        # The parent delivers what it queued; the child starts empty, with a thread of its own (a
        # fork keeps only the forking thread) and a fresh lock (the parent's may have been held).
        self._evaluator._events_reset()
        self._delivering = threading.Lock()
        self._delivered = 0
        self._sink_errors = 0
        if not self._stopping.is_set():
            self._thread = self._start_thread()

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"ExposureStream(recorded={s.recorded}, deduplicated={s.deduplicated}, dropped={s.dropped}, "
            f"delivered={s.delivered}, sinks={len(self._sinks)})"
        )


# One stream per evaluator, for the life of the process: two consumers of one queue would split it.
_streams: dict[int, ExposureStream] = {}
_streams_lock = threading.Lock()


def _stream_for(
    evaluator: FlagEvaluator,
    sink: ExposureSink,
    *,
    batch_size: int = 1000,
    interval: float = 1.0,
    capacity: int = 100_000,
    window: int = 65_536,
) -> ExposureStream:
    """`FlagEvaluator.on_exposure()`: the evaluator's stream (made on the first call), with `sink` added."""
    if not callable(sink):
        raise TypeError(f"sink must be callable, got {type(sink).__name__}")
    with _streams_lock:
        stream = _streams.get(id(evaluator))
        if stream is None or stream._evaluator is not evaluator:
            stream = ExposureStream(
                evaluator, batch_size=batch_size, interval=interval, capacity=capacity, window=window
            )
            _streams[id(evaluator)] = stream
        stream.add_sink(sink)
        return stream


# Evaluators that count (`enable_counters()`) without a stream: a child counts its own evaluations.
_counting: list[FlagEvaluator] = []


def _reset_after_fork(evaluator: FlagEvaluator) -> None:
    """Called by `FlagEvaluator.enable_counters()`: resets the evaluator's counters in a forked child."""
    with _streams_lock:
        _counting.append(evaluator)


def _after_fork_in_child() -> None:
    global _streams_lock
    _streams_lock = threading.Lock()
    for stream in list(_streams.values()):
        stream._after_fork_in_child()
    streamed = {id(stream._evaluator) for stream in _streams.values()}
    for evaluator in _counting:
        if id(evaluator) not in streamed:
            evaluator._events_reset()


def _close_all() -> None:
    with _streams_lock:
        streams = list(_streams.values())
    for stream in streams:
        stream.close(timeout=2.0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
