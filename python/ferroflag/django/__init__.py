"""Django integration: add `"ferroflag.django"` to `INSTALLED_APPS` and configure `FERROFLAG`.

The process-wide evaluator lives here. It is built from `settings.FERROFLAG` on first use, and the
sync (a `FlagSyncClient` for `URL`, a `FlagFileWatcher` for `FILE`) starts on the first use *in each
process*: the first request through `FlagMiddleware`, or the first `get_evaluator()`. `ready()` never
starts it, so management commands that do not look at flags start nothing, the `runserver`
autoreloader's parent never polls, and a gunicorn `--preload` master never polls (each worker starts
its own on its first request). Code that evaluates flags in a master anyway is covered too: the
native client restarts itself in each forked child. Call `start()` to start eagerly (e.g. from
gunicorn's `post_fork` hook).

Under the pytest plugin's `ferroflag` fixture (`ferroflag.testing.current()`), `get_evaluator()`
returns that test's evaluator and starts nothing.

This package is the only part of ferroflag that imports Django.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured

from ferroflag import FlagEvaluator, FlagFileWatcher, FlagSyncClient, testing
from ferroflag._binding import resolve
from ferroflag.django import conf
from ferroflag.sources import FlagSource, SourceStatus

__all__ = [
    "aget_evaluator",
    "get_evaluator",
    "start",
    "stop",
    "sync_status",
]


@dataclass(frozen=True)
class _Loaded:
    config: conf.FerroflagSettings
    evaluator: FlagEvaluator
    source: FlagSource | None
    builder: conf.ContextBuilder
    builder_is_async: bool


class _Runtime:
    """The process's evaluator and sync source. Reads of `loaded`/`started` take no lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded: _Loaded | None = None
        self.started = False  # the source was started (a forked child inherits this: the native client restarts)
        # Until when flag-using code waits for the source's first load: one deadline for the whole process,
        # so requests that arrive while that load is in flight wait at most START_WAIT in all, not each.
        # 0.0 once the first load is in (or the wait is over, or there is nothing to wait for).
        self.deadline = 0.0
        self.required_ok = False  # REQUIRE_FLAGS: the first load is in (the middleware stops asking)


_rt = _Runtime()


def _after_fork_in_child() -> None:
    # A lock another thread held at fork() stays locked in the child for ever.
    _rt.lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _build(config: conf.FerroflagSettings) -> _Loaded:
    # Only FLAGS loads here: for a synced source, version 0 tells `_setup()` there is nothing yet.
    evaluator = FlagEvaluator(config.flags if config.source == "flags" else None)
    # INTERVAL unset keeps each client's own default (10 s for a service, 1 s for a file).
    interval: dict[str, Any] = {"interval": config.interval} if config.interval is not None else {}
    source: FlagSource | None = None
    try:
        if config.source == "url":
            source = FlagSyncClient(
                evaluator,
                config.url,
                path=config.path,
                timeout=config.timeout,
                headers=dict(config.headers) if config.headers is not None else None,
                cache_path=config.cache_path,
                **interval,
            )
        elif config.source == "file":
            source = FlagFileWatcher(evaluator, config.file, **interval)
        elif config.source == "database":
            # Imported here: it imports the models, which need the app registry ready.
            from ferroflag.django.database import DatabaseSource

            source = DatabaseSource(evaluator, using=config.database, **interval)
    except (TypeError, ValueError) as exc:  # what the checks cannot see, e.g. a header value that is not valid HTTP
        raise ImproperlyConfigured(f"ferroflag: {conf.SETTING}: {exc}") from exc
    builder = conf.context_builder(config)
    return _Loaded(config, evaluator, source, builder, iscoroutinefunction(builder))


def _setup(start: bool) -> _Loaded:
    """Builds the evaluator if needed and, with `start`, starts the sync once in this process."""
    with _rt.lock:
        loaded = _rt.loaded
        if loaded is None:
            loaded = _rt.loaded = _build(conf.load())
        if start and not _rt.started:
            if loaded.source is not None:
                # Starting never blocks: only code that asks a flag waits for the first load (see
                # `_await_first_load`), so a view that asks none is never held up. Nothing to wait for
                # when the source has served already: a child forked after the first load, a restart
                # after stop(). Asked of the source, not read off the evaluator's version: a test's
                # override_flag may have published before the first load.
                ready = loaded.source.status().ready
                loaded.source.start(wait=0.0)
                _rt.deadline = 0.0 if ready else time.monotonic() + loaded.config.start_wait
            _rt.started = True
        return loaded


def _await_first_load(loaded: _Loaded) -> None:
    """Waits, until the process's one deadline at most, for the source's first load (a no-op after it)."""
    deadline = _rt.deadline
    if not deadline or loaded.source is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or loaded.source.wait_ready(remaining) or time.monotonic() >= deadline:
        _rt.deadline = 0.0  # loaded, or waited long enough: nobody waits again in this process


async def _aawait_first_load(loaded: _Loaded) -> None:
    """`_await_first_load()` off the event loop."""
    if _rt.deadline:
        await sync_to_async(_await_first_load, thread_sensitive=False)(loaded)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _prepared() -> _Loaded:
    """What a request needs: the loaded state, with the sync started (not waited for) unless a test owns
    the flags."""
    loaded = _rt.loaded
    if loaded is not None and _rt.started:
        return loaded
    return _setup(start=testing.current() is None)


async def _aprepared() -> _Loaded:
    """`_prepared()` for async code: a first use waits off the event loop."""
    loaded = _rt.loaded
    if loaded is not None and _rt.started:
        return loaded
    prepared: _Loaded = await sync_to_async(_prepared, thread_sensitive=False)()
    return prepared


def _settings() -> conf.FerroflagSettings:
    """The validated `FERROFLAG` of the loaded runtime (read from the settings when nothing is loaded)."""
    loaded = _rt.loaded
    return loaded.config if loaded is not None else conf.load()


def _reset() -> None:
    """Drops the evaluator and stops its sync, so the next use rebuilds from the settings (tests)."""
    with _rt.lock:
        loaded, _rt.loaded, _rt.started = _rt.loaded, None, False
        _rt.deadline, _rt.required_ok = 0.0, False
    if loaded is not None and loaded.source is not None:
        loaded.source.stop()


def get_evaluator(*, start: bool = True) -> FlagEvaluator:
    """The process's `FlagEvaluator`, built from `settings.FERROFLAG` on first use.

    Arguments:
        start: Start the sync in this process if it is not running yet (the first call waits up to
            `START_WAIT` seconds for the first snapshot). `False` only builds the evaluator.

    Returns:
        The evaluator; under the pytest plugin's `ferroflag` fixture, that test's evaluator. While a test
        overrides flags (`override_flag`, the fixture) and the source has written new flags meanwhile, the
        test's view: the source's flags with the test's overrides on top (`ferroflag.testing.TestData`).

    Raises:
        ImproperlyConfigured: `FERROFLAG` is missing or wrong (see `manage.py check`).
    """
    data = testing.current()
    if data is not None:
        return resolve(data.evaluator)
    loaded = _rt.loaded
    if loaded is None or (start and not _rt.started):
        loaded = _setup(start)
    # Waiting for the first load is blocking: never on an event loop (async code waits in aload()).
    if start and _rt.deadline and not _on_event_loop():
        _await_first_load(loaded)
    return resolve(loaded.evaluator)


async def aget_evaluator() -> FlagEvaluator:
    """`get_evaluator()` for async code: the first call's wait happens off the event loop."""
    data = testing.current()
    if data is not None:
        return resolve(data.evaluator)
    loaded = _rt.loaded
    if loaded is None or not _rt.started:
        loaded = await sync_to_async(_setup, thread_sensitive=False)(True)
    await _aawait_first_load(loaded)
    return resolve(loaded.evaluator)


def _site_evaluator(*, start: bool) -> FlagEvaluator:
    """The evaluator the sources write (never a test's view of it): what test overrides layer over. With
    `start`, the source is started and its first load awaited (up to `START_WAIT`, once per process)."""
    loaded = _setup(start)
    if start:
        _await_first_load(loaded)
    return loaded.evaluator


def start() -> FlagEvaluator:
    """Starts the sync in this process now (idempotent), e.g. from gunicorn's `post_fork` hook, and waits
    (up to `START_WAIT`, once per process) for the first load.

    Returns:
        The evaluator.
    """
    loaded = _setup(start=True)
    _await_first_load(loaded)
    return loaded.evaluator


def stop() -> None:
    """Stops the sync in this process (idempotent). The evaluator keeps answering with the flags it
    has; the next `start()` or first use resumes syncing."""
    with _rt.lock:
        loaded = _rt.loaded
        _rt.started = False
    if loaded is not None and loaded.source is not None:
        loaded.source.stop()


def sync_status() -> SourceStatus | None:
    """The sync's state (for a health endpoint: `sync_status().to_dict()`), or None for `FLAGS` or
    before the first use. For `DATABASE` it is a `ferroflag.django.database.DatabaseStatus`."""
    loaded = _rt.loaded
    return loaded.source.status() if loaded is not None and loaded.source is not None else None


def _database_changed(using: str) -> None:
    """A change to the flags in database `using` was committed in this process: apply it now, not at the
    next poll. Called by `ferroflag.django.store` after the commit."""
    loaded = _rt.loaded
    if loaded is None or loaded.config.source != "database" or loaded.config.database != using:
        return
    from ferroflag.django.database import DatabaseSource

    if _rt.started and isinstance(loaded.source, DatabaseSource):
        loaded.source.refresh()
