"""Change listeners: a callback after each change of an evaluator's flags (docs/spec.md §8, "Change listeners").

    def changed(keys: frozenset[str]) -> None:
        cache.invalidate(keys)

    listener = evaluator.on_change(changed)

`changed(keys)` runs after the new snapshot is live, whatever published it (`update()`, `update_json()`,
`load_file()`, a `FlagSyncClient` poll, a `FlagFileWatcher` reload), with the keys of the flags whose answers
may differ: flags added, removed or redefined, flags reaching a changed segment, and flags whose
prerequisites are among those. A new snapshot in which nothing evaluation reads changed (the same document
loaded again) calls nothing. Snapshots published in quick succession may be reported together, as one call
with the union of their keys.

Callbacks run one at a time on a thread of this module (one per evaluator and process); the thread waits
natively, without the GIL, and wakes within milliseconds of a change. A callback that raises is logged to
the `ferroflag` logger and keeps being called. After `os.fork()` the child gets a thread of its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferroflag import FlagEvaluator

__all__ = ["ChangeCallback", "ChangeListener"]

_logger = logging.getLogger("ferroflag")

ChangeCallback = Callable[[frozenset[str]], object]
"""Called with the keys whose answers may have changed."""

_WAIT = 1.0  # seconds per native wait: how soon `close()` is noticed at the latest


class ChangeListener:
    """Calls an evaluator's change callbacks; made by `FlagEvaluator.on_change()`."""

    def __init__(self, evaluator: FlagEvaluator) -> None:
        self._evaluator = evaluator
        self._callbacks: list[ChangeCallback] = []
        self._stopping = threading.Event()
        self.changes = 0
        """Changes reported so far: counted once every callback has been called for the change."""
        self.version = -1
        """The evaluator version the change being reported brought (set before its callbacks run, so a
        callback reads the snapshot it is called for, not one published since)."""
        self.errors = 0
        """Callback calls that raised."""
        evaluator._changes_reset()
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="ferroflag-changes", daemon=True)
        thread.start()
        return thread

    def add(self, callback: ChangeCallback) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._callbacks.append(callback)

    def remove(self, callback: ChangeCallback) -> bool:
        """Stops calling `callback` (its first registration); False when it was not registered.
        A call already under way finishes. Removing the last callback stops the listener."""
        try:
            self._callbacks.remove(callback)
        except ValueError:
            return False
        if not self._callbacks:
            # Nobody listens: the thread ends within one native wait, without holding the caller up,
            # and the next `on_change()` starts a listener afresh.
            self._stopping.set()
            with _lock:
                if _listeners.get(id(self._evaluator)) is self:
                    del _listeners[id(self._evaluator)]
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            change = self._evaluator._changes_next(_WAIT)
            if change is None:
                continue
            version, keys = change
            if not keys:
                continue
            self.version = version
            changed = frozenset(keys)
            for callback in list(self._callbacks):
                try:
                    callback(changed)
                except Exception:
                    self.errors += 1
                    _logger.exception("ferroflag: a change callback raised on %d changed flags", len(changed))
            self.changes += 1

    def close(self, timeout: float = 5.0) -> None:
        """Stops calling the callbacks. Idempotent."""
        self._stopping.set()
        self._thread.join(timeout)
        with _lock:
            if _listeners.get(id(self._evaluator)) is self:
                del _listeners[id(self._evaluator)]

    def _after_fork_in_child(self) -> None:
        self._evaluator._changes_reset()
        if not self._stopping.is_set():
            self._thread = self._start()


_listeners: dict[int, ChangeListener] = {}
_lock = threading.Lock()


def _listen(evaluator: FlagEvaluator, callback: ChangeCallback) -> ChangeListener:
    """`FlagEvaluator.on_change()`: the evaluator's listener (made on the first call), with `callback` added."""
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    with _lock:
        listener = _listeners.get(id(evaluator))
        if listener is None or listener._evaluator is not evaluator:
            listener = ChangeListener(evaluator)
            _listeners[id(evaluator)] = listener
        listener.add(callback)
        return listener


def _close_all() -> None:
    with _lock:
        listeners = list(_listeners.values())
    for listener in listeners:
        listener.close(timeout=2.0)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for listener in list(_listeners.values()):
        listener._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
