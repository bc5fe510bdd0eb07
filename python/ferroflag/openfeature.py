"""An OpenFeature provider backed by a ferroflag `FlagEvaluator` (install `ferroflag[openfeature]`).

    from openfeature import api
    from ferroflag.openfeature import FerroflagProvider

    api.set_provider_and_wait(FerroflagProvider(evaluator))
    api.get_client().get_integer_value("checkout-limit", 5, EvaluationContext("user-123", {"plan": "team"}))

What resolves to what (docs/spec.md §9):

- **Values.** boolean: the flag's value when the flag has `values`, otherwise `enabled`. string: the
  value when the flag has `values`, otherwise the answer's variant (your default when the variant is
  `""`). integer, float and object: the value. A value must have the type asked for: a JSON integer
  is a valid float (it comes back as a `float`), a bool is not an integer, a JSON number with a
  fraction or exponent (`5.0`) is not an integer, an object is a JSON object or array. Otherwise
  your default comes back with `TYPE_MISMATCH`. An answer without a value (its variant has no entry
  in `values`) gives your default with the answer's reason and no error. Zero values (`""`, `0`,
  `False`, `{}`, `[]`) are values like any other.
- **Reasons.** `rule_match` → TARGETING_MATCH; `percentage`, `percentage_excluded` → SPLIT; `default`
  → SPLIT on a flag whose `variants` has two or more positive weights, DEFAULT on a flag with rules,
  STATIC otherwise (everyone gets the same answer); `no_match`, `prerequisite_failed` → DEFAULT;
  `disabled` → DISABLED. An unknown flag gives your default with ERROR / `FLAG_NOT_FOUND`
  (`PROVIDER_NOT_READY` instead while an attached sync client has loaded nothing yet).
- **Details.** The variant is the answer's variant (`None` for `""`). `flag_metadata` is the flag's
  own `metadata`, plus ferroflag's reason under `"ferroflag.reason"` (see `REASON_METADATA_KEY`; it
  replaces a flag metadata entry of that name).
- **Context** (`to_eval_context`): the targeting key is the `user_id` (an attribute `user_id` is used
  when there is no targeting key); the attributes `email`, `plan` and `country` fill those fields;
  every other attribute becomes a property, as text the way `EvalContext` stores it (`True` →
  `"true"`, `3` → `"3"`, a datetime in ISO 8601: RFC 3339 with its offset when it is aware). A list
  or tuple of such scalars becomes a list property (docs/spec.md §4). `None`, dicts, and lists holding
  anything else are left out.
- **Tests.** `ferroflag.testing.bind(provider, evaluator)` points the provider at a test evaluator;
  `bind(app, evaluator)` does the same for every provider over the app's own evaluator (see
  `FerroflagProvider`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata, ProviderStatus

from ferroflag import EvalContext, EvalResult, FlagEvaluator
from ferroflag._binding import bound_evaluator
from ferroflag.changes import ChangeListener
from ferroflag.sources import FlagSource

__all__ = ["PROVIDER_NAME", "REASON_METADATA_KEY", "FerroflagProvider", "SyncStatusSource", "to_eval_context"]

PROVIDER_NAME = "ferroflag"

REASON_METADATA_KEY = "ferroflag.reason"
"""The `flag_metadata` key holding ferroflag's own reason (`rule_match`, `percentage_excluded`, ...)."""

_logger = logging.getLogger("ferroflag")
_FIELDS = ("email", "plan", "country")
# Reasons that do not depend on the flag's shape; `default` does (`_FlagInfo.default_reason`).
_REASONS: dict[str, Reason] = {
    "rule_match": Reason.TARGETING_MATCH,
    "percentage": Reason.SPLIT,
    "percentage_excluded": Reason.SPLIT,
    "no_match": Reason.DEFAULT,
    "prerequisite_failed": Reason.DEFAULT,
    "disabled": Reason.DISABLED,
}


class SyncStatusSource(Protocol):
    """What the provider needs from the flag source that feeds its evaluator: any
    `ferroflag.sources.FlagSource` fits (`FlagSyncClient`, `FlagFileWatcher`, a Python source whose
    `status()` is a `ferroflag.sources.SourceStatus`), and so does any object with just
    `status()` returning an object or a mapping with `ready` (bool),
    `last_error` (str or None) and `stale` (bool; or `is_stale`, a bool or method; or
    `consecutive_failures`, an int). A `wait_ready(timeout)` method is used when present."""

    def status(self) -> Any: ...


# --- context ------------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    """A scalar attribute as the text `EvalContext` would store, or None when it is not a scalar."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        # Aware: RFC 3339 with the offset (what `before` / `after` read). Naive: ISO 8601 as is.
        return value.isoformat()
    return None


def _attribute(value: object) -> str | list[str] | None:
    """A scalar as text, a list or tuple of scalars as a list of texts; None for anything else."""
    if isinstance(value, list | tuple):
        texts = [_text(item) for item in value]
        if any(text is None for text in texts):
            return None
        return [text for text in texts if text is not None]
    return _text(value)


def to_eval_context(context: EvaluationContext | None) -> EvalContext:
    """Maps an OpenFeature evaluation context to an `EvalContext` (see the module docstring)."""
    if context is None:
        return EvalContext("")
    attributes = context.attributes
    user_id = context.targeting_key
    if not user_id:
        user_id = _text(attributes.get("user_id")) or ""
    fields: dict[str, str] = {}
    properties: dict[str, str | list[str]] = {}
    for name, value in attributes.items():
        if name == "user_id":
            continue
        attribute = _attribute(value)
        if attribute is None:
            continue
        if name in _FIELDS:
            if isinstance(attribute, str):  # the fields hold one text; a list there is left out
                fields[name] = attribute
        else:
            properties[name] = attribute
    return EvalContext(user_id, properties=properties, **fields)


# --- sync status --------------------------------------------------------------------------------


def _field(status: object, name: str, default: Any) -> Any:
    if isinstance(status, Mapping):
        return status.get(name, default)
    return getattr(status, name, default)


def _sync_state(status: object) -> tuple[ProviderStatus, str | None]:
    """READY, STALE (ready, failing since), ERROR (nothing loaded, failing) or NOT_READY (nothing
    loaded yet, no failure), with the last error."""
    error = _field(status, "last_error", None)
    message = None if error is None else str(error)
    if not _field(status, "ready", False):
        return (ProviderStatus.ERROR if message else ProviderStatus.NOT_READY), message
    stale = _field(status, "stale", None)
    if stale is None:
        stale = _field(status, "is_stale", None)
        if callable(stale):
            stale = stale()
    if stale is None:
        stale = (_field(status, "consecutive_failures", 0) or 0) > 0
    return (ProviderStatus.STALE if stale else ProviderStatus.READY), message


# --- resolution ---------------------------------------------------------------------------------


class _Kind(Enum):
    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number with a fraction or exponent"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _typed(kind: _Kind, value: object) -> tuple[bool, Any]:
    """Whether `value` (not None) is a value of `kind`, and the value to return."""
    if kind is _Kind.BOOLEAN:
        return isinstance(value, bool), value
    if kind is _Kind.STRING:
        return isinstance(value, str), value
    if kind is _Kind.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is _Kind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, value
        try:
            return True, float(value)  # the SDK checks isinstance(value, float): 50 → 50.0
        except OverflowError:
            return False, value
    return isinstance(value, dict | list), value


@dataclass(frozen=True)
class _FlagInfo:
    """What resolution needs from a flag's definition besides its answer."""

    has_values: bool
    default_reason: Reason
    metadata: dict[str, str | int | float | bool]


class FerroflagProvider(AbstractProvider):
    """OpenFeature provider over a `FlagEvaluator` (what resolves to what: see the module docstring).

    Arguments:
        evaluator: Where flags are evaluated. The provider never changes it.
        sync: Optionally the flag source that keeps `evaluator` up to date (a `ferroflag.sources.FlagSource`:
            `FlagSyncClient`, `FlagFileWatcher`; or any object with `status()`, see `SyncStatusSource`). The provider
            does not start or stop it. With it, `initialize()` waits up to `ready_timeout` seconds for
            the first snapshot (and raises `ProviderNotReadyError` after that, which the SDK reports as
            a PROVIDER_ERROR event; the source keeps retrying, so the error is not PROVIDER_FATAL), and
            a watcher thread started by `initialize()` and stopped by `shutdown()` runs
            `check_status()` every `status_interval` seconds. `status_interval=None` starts no
            thread; call `check_status()` yourself.
        ready_timeout: Seconds `initialize()` waits for the first snapshot.
        status_interval: Seconds between two checks of the watcher thread, or None.

    Events (OpenFeature spec §5): READY, STALE (the source is failing; the last good flags are still
    served), ERROR (nothing loaded and the source is failing) as the source's status changes, and
    CONFIGURATION_CHANGED with `flags_changed` naming the flags that were added, removed or changed
    by a new snapshot, including the flags whose answers a changed segment or prerequisite can move;
    a snapshot that changes none of them emits nothing. CONFIGURATION_CHANGED comes from the
    evaluator's change listener (`evaluator.on_change`, docs/spec.md §8), so it follows a pushed or
    polled change within milliseconds whatever `status_interval` is, and the changed keys are the
    engine's own. The first flags after an error are announced by READY, not as a change. The SDK
    (openfeature-sdk 0.10) emits READY or ERROR itself when `initialize()` returns or raises, so the
    provider does not emit them from `initialize()` (the handlers would run twice); every later
    transition is the provider's own event.

    Tests: `ferroflag.testing.bind(provider, evaluator)` makes the provider resolve against
    `evaluator` until the returned function is called, and `bind(app, evaluator)` (or
    `TestData.bind(app)`) also reaches every provider whose evaluator is the app's own
    (`app.state.ferroflag.evaluator`, as `ferroflag.fastapi.setup()` sets it). Status and events
    still follow `evaluator` and `sync` given here.
    """

    def __init__(
        self,
        evaluator: FlagEvaluator,
        *,
        sync: FlagSource | SyncStatusSource | None = None,
        ready_timeout: float = 5.0,
        status_interval: float | None = 1.0,
    ) -> None:
        super().__init__()
        if not isinstance(evaluator, FlagEvaluator):
            raise TypeError(f"evaluator must be a FlagEvaluator, got {type(evaluator).__name__}")
        if isinstance(ready_timeout, bool) or not (
            isinstance(ready_timeout, int | float) and math.isfinite(ready_timeout) and ready_timeout >= 0
        ):
            raise ValueError(f"ready_timeout must be a number of seconds >= 0, got {ready_timeout!r}")
        if status_interval is not None and (
            isinstance(status_interval, bool)
            or not isinstance(status_interval, int | float)
            or not (math.isfinite(status_interval) and status_interval > 0)
        ):
            raise ValueError(f"status_interval must be a positive number or None, got {status_interval!r}")
        self._evaluator = evaluator
        self._sync = sync
        self._ready_timeout = float(ready_timeout)
        self._status_interval = status_interval
        # Lifecycle: `_active` between initialize() and shutdown(); `_state` is the status the
        # provider last told the SDK about (or the SDK derived from initialize()).
        self._active = False
        self._state = ProviderStatus.NOT_READY
        # The evaluator version READY last announced: a change listener call for that snapshot (or an
        # older one) is part of READY, not a configuration change.
        self._announced_version = -1
        self._listener: ChangeListener | None = None
        self._check_lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._info_cache: tuple[FlagEvaluator, int, dict[str, _FlagInfo]] = (evaluator, -1, {})

    @property
    def evaluator(self) -> FlagEvaluator:
        """The evaluator given to the constructor."""
        return self._evaluator

    @property
    def current_evaluator(self) -> FlagEvaluator:
        """The evaluator flags resolve against now: a test evaluator bound with
        `ferroflag.testing.bind` (to this provider, or to its evaluator), else `evaluator`."""
        bound = bound_evaluator(self)
        if bound is None:
            bound = bound_evaluator(self._evaluator)
        return self._evaluator if bound is None else bound

    @property
    def sync(self) -> FlagSource | SyncStatusSource | None:
        return self._sync

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    # --- lifecycle and events -------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Waits for the sync source's first snapshot (when there is a source) and starts the
        watcher thread. Raises `ProviderNotReadyError` when nothing loaded within `ready_timeout`,
        or when `shutdown()` was called meanwhile (initialization is abandoned)."""
        with self._check_lock:
            stop = self._stop = threading.Event()
            self._active = True
            self._state = ProviderStatus.NOT_READY
        sync = self._sync
        ready, message = True, None
        if sync is not None:
            state, message = self._wait_until_ready(sync, stop)
            ready = state in (ProviderStatus.READY, ProviderStatus.STALE)
        with self._check_lock:
            if stop.is_set():
                raise ProviderNotReadyError("the provider was shut down during initialization")
            # What the SDK sets when this returns (READY) or raises (ERROR). A STALE source is
            # reported by the next check_status(), after the SDK's READY event.
            self._state = ProviderStatus.READY if ready else ProviderStatus.ERROR
            self._announced_version = self._evaluator.version if ready else -1
            if self._listener is None:
                self._listener = self._evaluator.on_change(self._flags_changed)
            if sync is not None and self._status_interval is not None:
                self._watcher = threading.Thread(
                    target=self._watch, args=(stop, self._status_interval), name="ferroflag-openfeature", daemon=True
                )
                self._watcher.start()
        if not ready:
            raise ProviderNotReadyError(
                f"no flags loaded after {self._ready_timeout:g} s" + (f": {message}" if message else "")
            )

    def _wait_until_ready(
        self, sync: FlagSource | SyncStatusSource, stop: threading.Event
    ) -> tuple[ProviderStatus, str | None]:
        deadline = time.monotonic() + self._ready_timeout
        wait = getattr(sync, "wait_ready", None)
        while True:
            state, message = _sync_state(sync.status())
            remaining = deadline - time.monotonic()
            if state in (ProviderStatus.READY, ProviderStatus.STALE) or remaining <= 0 or stop.is_set():
                return state, message
            step = min(0.1, remaining)  # short steps, so shutdown() cuts the wait short
            started = time.monotonic()
            if callable(wait):
                wait(step)  # returns at once when the source is not running
            left = step - (time.monotonic() - started)
            if left > 0:
                stop.wait(left)

    def shutdown(self) -> None:
        """Stops the watcher thread and returns the provider to its uninitialized state (it can be
        initialized again). Idempotent; the sync source is left running."""
        with self._check_lock:
            self._stop.set()
            self._active = False
            self._state = ProviderStatus.NOT_READY
            watcher, self._watcher = self._watcher, None
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove(self._flags_changed)
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5)

    def _watch(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.check_status()
            except Exception:
                _logger.exception("ferroflag OpenFeature provider: checking the flag source failed")

    def check_status(self) -> ProviderStatus:
        """Reads the sync source's status and emits READY / STALE / ERROR when it changed since the
        last check.

        Without a sync source the status is READY. Before `initialize()` and after `shutdown()` nothing
        is emitted (NOT_READY). The watcher thread calls this; call it yourself when `status_interval`
        is None. (CONFIGURATION_CHANGED does not wait for it: see the class docstring.)
        """
        with self._check_lock:
            if not self._active:
                return ProviderStatus.NOT_READY
            message = None
            state = ProviderStatus.READY
            if self._sync is not None:
                state, message = _sync_state(self._sync.status())
                if state is ProviderStatus.NOT_READY:
                    # Initialized but nothing loaded: the SDK's view is ERROR (initialize() raised).
                    state = ProviderStatus.ERROR
                    message = message or "no flags loaded yet"
            previous, self._state = self._state, state
            if previous is ProviderStatus.ERROR and state in (ProviderStatus.READY, ProviderStatus.STALE):
                # The first flags after an error: READY or STALE announces them, not a change event.
                self._announced_version = self._evaluator.version
            if state is not previous:
                if state is ProviderStatus.READY:
                    self.emit_provider_ready(ProviderEventDetails())
                elif state is ProviderStatus.STALE:
                    self.emit_provider_stale(ProviderEventDetails(message=message))
                elif state is ProviderStatus.ERROR:
                    # Not PROVIDER_FATAL: the source keeps retrying.
                    self.emit_provider_error(ProviderEventDetails(message=message, error_code=ErrorCode.GENERAL))
            return state

    def _flags_changed(self, keys: frozenset[str]) -> None:
        """The change listener's callback (its own thread): CONFIGURATION_CHANGED with the engine's keys."""
        with self._check_lock:
            if not self._active or self._state not in (ProviderStatus.READY, ProviderStatus.STALE):
                return  # nothing announced yet: READY will announce these flags
            # The version this call reports, not the evaluator's newest: a snapshot published while
            # this call waited gets a call of its own.
            listener = self._listener
            version = listener.version if listener is not None else self._evaluator.version
            if version <= self._announced_version:
                return  # the snapshot READY announced
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=sorted(keys), metadata={"version": version})
            )

    # --- resolution -----------------------------------------------------------------------------

    def _flag_info(self, evaluator: FlagEvaluator, version: int, key: str) -> _FlagInfo | None:
        cached_evaluator, cached_version, cache = self._info_cache
        if cached_evaluator is not evaluator or cached_version != version:
            cache = {}
            self._info_cache = (evaluator, version, cache)
        info = cache.get(key)
        if info is None:
            config = evaluator.get_config(key)
            if config is None:
                return None
            if sum(1 for weight in config.variants.values() if weight > 0) >= 2:
                default_reason = Reason.SPLIT
            elif config.rules or 0 < config.percentage < 100:
                default_reason = Reason.DEFAULT
            else:
                default_reason = Reason.STATIC  # everyone gets the same answer
            info = cache[key] = _FlagInfo(bool(config.values), default_reason, config.metadata)
        return info

    def _evaluate(self, key: str, context: EvaluationContext | None) -> tuple[EvalResult, _FlagInfo | None, bool]:
        """The answer, the flag's definition facts from the same snapshot, and whether the evaluator
        is the provider's own."""
        evaluator = self.current_evaluator
        ctx = to_eval_context(context)
        info = None
        for _ in range(3):  # an update between evaluate() and get_config(): read both again
            version = evaluator.version
            result = evaluator.evaluate(key, ctx)
            if result.reason == "not_found":
                return result, None, evaluator is self._evaluator
            info = self._flag_info(evaluator, version, key)
            if info is not None and evaluator.version == version:
                break
        return result, info, evaluator is self._evaluator

    def _resolve(
        self, kind: _Kind, key: str, default_value: Any, context: EvaluationContext | None
    ) -> FlagResolutionDetails[Any]:
        result, info, own = self._evaluate(key, context)
        if result.reason == "not_found":
            return self._missing(key, default_value, own)
        if info is None:  # the flag kept changing under us: judge by this answer alone
            info = _FlagInfo(result.value is not None, Reason.DEFAULT, {})
        reason = _REASONS.get(result.reason, info.default_reason)
        metadata: dict[str, str | int | float | bool] = {**info.metadata, REASON_METADATA_KEY: result.reason}
        variant = result.variant or None
        if not info.has_values and kind is _Kind.BOOLEAN:
            return FlagResolutionDetails(
                value=result.enabled,
                reason=reason,
                variant=variant,
                flag_metadata=metadata,
            )
        if not info.has_values and kind is _Kind.STRING:
            return FlagResolutionDetails(
                value=result.variant if result.variant else default_value,
                reason=reason,
                variant=variant,
                flag_metadata=metadata,
            )
        value = result.value  # a fresh copy on each access: read it once
        if value is None:
            return FlagResolutionDetails(value=default_value, reason=reason, variant=variant, flag_metadata=metadata)
        ok, typed = _typed(kind, value)
        if not ok:
            shown = f" (variant {result.variant!r})" if result.variant else ""
            return FlagResolutionDetails(
                value=default_value,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=(f"flag {key!r} serves a {_json_type(value)} value{shown}, not {kind.value}"),
                flag_metadata=metadata,
            )
        return FlagResolutionDetails(value=typed, reason=reason, variant=variant, flag_metadata=metadata)

    def _missing(self, key: str, default_value: Any, own: bool) -> FlagResolutionDetails[Any]:
        if own and self._sync is not None and self._evaluator.version == 0:
            code, message = ErrorCode.PROVIDER_NOT_READY, "no flags loaded yet"
        else:
            code, message = ErrorCode.FLAG_NOT_FOUND, f"flag {key!r} not found"
        return FlagResolutionDetails(
            value=default_value,
            reason=Reason.ERROR,
            error_code=code,
            error_message=message,
            flag_metadata={REASON_METADATA_KEY: "not_found"},
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(_Kind.BOOLEAN, flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(_Kind.STRING, flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(_Kind.INTEGER, flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(_Kind.FLOAT, flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(_Kind.OBJECT, flag_key, default_value, evaluation_context)
