"""An OpenFeature provider backed by a ferroflag `FlagEvaluator` (install `ferroflag[openfeature]`).

    from openfeature import api
    from ferroflag.openfeature import FerroflagProvider

    api.set_provider_and_wait(FerroflagProvider(evaluator))
    api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("user-123", {"plan": "team"}))

What resolves to what:

- boolean: the flag's `enabled`; string: its variant, or your default value when the flag is off for
  the context or serves no variant. Integer, float and object flags do not exist in ferroflag:
  they resolve to your default with `TYPE_MISMATCH`.
- An unknown flag resolves to your default with `FLAG_NOT_FOUND` (`PROVIDER_NOT_READY` instead while
  an attached sync client has not loaded anything yet).
- Reasons: `rule_match` → TARGETING_MATCH; `percentage` and `percentage_excluded` → SPLIT;
  `disabled` → DISABLED (boolean `False`); `default` → STATIC for a flag without rules or weighted
  variants (everyone gets the same), SPLIT with two or more weighted variants, DEFAULT when it has
  rules and none matched. `flag_metadata["reason"]` carries ferroflag's own reason.
- The context (`to_eval_context`): the targeting key is the `user_id` (an attribute `user_id` is
  used when there is no targeting key); the attributes `email`, `plan` and `country` fill those fields;
  every other attribute becomes a property. Values become text as `EvalContext` stores them
  (`True` → `"true"`, `3` → `"3"`, a datetime in ISO 8601); lists, dicts and `None` are skipped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata, ProviderStatus

from ferroflag import EvalContext, EvalResult, FlagConfig, FlagEvaluator

__all__ = ["PROVIDER_NAME", "FerroflagProvider", "SyncStatusSource", "to_eval_context"]

PROVIDER_NAME = "ferroflag"

_logger = logging.getLogger("ferroflag")
_T = TypeVar("_T")
_FIELDS = ("email", "plan", "country")
_REASONS: dict[str, Reason] = {
    "rule_match": Reason.TARGETING_MATCH,
    "percentage": Reason.SPLIT,
    "percentage_excluded": Reason.SPLIT,
    "disabled": Reason.DISABLED,
}


class SyncStatusSource(Protocol):
    """What the provider needs from a sync client (`FlagSyncClient` fits): `status()` returning an
    object or a mapping with `ready` (bool), `last_error` (str or None), and `consecutive_failures`
    (int) or `is_stale` (bool or method). A `wait_until_ready(timeout)` method is used when present."""

    def status(self) -> Any: ...


def _text(value: object) -> str | None:
    """An attribute value as the text `EvalContext` would store, or None when it has none."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def to_eval_context(context: EvaluationContext | None) -> EvalContext:
    """Maps an OpenFeature evaluation context to an `EvalContext` (see the module docstring)."""
    if context is None:
        return EvalContext("")
    attributes = context.attributes
    user_id = context.targeting_key
    if user_id is None:
        user_id = _text(attributes.get("user_id")) or ""
    fields: dict[str, str] = {}
    properties: dict[str, str] = {}
    for name, value in attributes.items():
        text = _text(value)
        if text is None or name == "user_id":
            continue
        if name in _FIELDS:
            fields[name] = text
        else:
            properties[name] = text
    return EvalContext(user_id, properties=properties, **fields)


def _field(status: object, name: str, default: Any) -> Any:
    if isinstance(status, Mapping):
        return status.get(name, default)
    return getattr(status, name, default)


def _sync_state(status: object) -> tuple[ProviderStatus, str | None]:
    error = _field(status, "last_error", None)
    message = None if error is None else str(error)
    if not _field(status, "ready", False):
        return (ProviderStatus.ERROR if message else ProviderStatus.NOT_READY), message
    stale = _field(status, "is_stale", None)
    if callable(stale):
        stale = stale()
    if stale is None:
        stale = (_field(status, "consecutive_failures", 0) or 0) > 0
    return (ProviderStatus.STALE if stale else ProviderStatus.READY), message


def _default_reason(config: FlagConfig | None) -> Reason:
    if config is None:
        return Reason.DEFAULT
    if sum(1 for weight in config.variants.values() if weight > 0) >= 2:
        return Reason.SPLIT
    return Reason.DEFAULT if config.rules else Reason.STATIC


class FerroflagProvider(AbstractProvider):
    """OpenFeature provider over a `FlagEvaluator`.

    Arguments:
        evaluator: Where flags are evaluated. The provider never changes it.
        sync: Optionally the sync client that keeps `evaluator` up to date (any object with
            `status()`, see `SyncStatusSource`). The provider does not start or stop it. With it,
            `initialize()` waits up to `ready_timeout` seconds for the first snapshot (and raises
            `ProviderNotReadyError` after that, which OpenFeature reports as an ERROR event), and a
            watcher thread started by `initialize()` and stopped by `shutdown()` checks the status
            every `status_interval` seconds, emitting READY, STALE (failing polls, last good flags
            still served), ERROR (nothing loaded and failing) and CONFIGURATION_CHANGED (a new
            snapshot) events. `status_interval=None` starts no thread; call `check_status()` yourself.
    """

    def __init__(
        self,
        evaluator: FlagEvaluator,
        *,
        sync: SyncStatusSource | None = None,
        ready_timeout: float = 5.0,
        status_interval: float | None = 1.0,
    ) -> None:
        super().__init__()
        if not isinstance(evaluator, FlagEvaluator):
            raise TypeError(f"evaluator must be a FlagEvaluator, got {type(evaluator).__name__}")
        if status_interval is not None and not (math.isfinite(status_interval) and status_interval > 0):
            raise ValueError(f"status_interval must be a positive number or None, got {status_interval}")
        self._evaluator = evaluator
        self._sync = sync
        self._ready_timeout = ready_timeout
        self._status_interval = status_interval
        self._state = ProviderStatus.NOT_READY
        self._version = evaluator.version
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._default_reasons: tuple[int, dict[str, Reason]] = (-1, {})

    @property
    def evaluator(self) -> FlagEvaluator:
        return self._evaluator

    @property
    def sync(self) -> SyncStatusSource | None:
        return self._sync

    def get_metadata(self) -> Metadata:
        return Metadata(name=PROVIDER_NAME)

    # --- lifecycle and events -------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        sync = self._sync
        if sync is None:
            return
        self._stop = threading.Event()
        state, message = self._wait_until_ready(sync)
        ready = state not in (ProviderStatus.NOT_READY, ProviderStatus.ERROR)
        with self._state_lock:
            # What the SDK sets when this returns (READY) or raises (ERROR); a STALE status is
            # reported by the next check_status(), after the SDK's READY event.
            self._state = ProviderStatus.READY if ready else ProviderStatus.ERROR
            self._version = self._evaluator.version
        if self._status_interval is not None and (self._watcher is None or not self._watcher.is_alive()):
            self._watcher = threading.Thread(
                target=self._watch, args=(self._stop, self._status_interval), name="ferroflag-openfeature", daemon=True
            )
            self._watcher.start()
        if not ready:
            raise ProviderNotReadyError(
                f"no flags loaded after {self._ready_timeout:g} s" + (f": {message}" if message else "")
            )

    def _wait_until_ready(self, sync: SyncStatusSource) -> tuple[ProviderStatus, str | None]:
        deadline = time.monotonic() + self._ready_timeout
        wait = getattr(sync, "wait_until_ready", None)
        if callable(wait):
            wait(self._ready_timeout)
        while True:
            state, message = _sync_state(sync.status())
            remaining = deadline - time.monotonic()
            if state not in (ProviderStatus.NOT_READY, ProviderStatus.ERROR) or remaining <= 0:
                return state, message
            if self._stop.wait(min(0.05, remaining)):
                return state, message

    def shutdown(self) -> None:
        self._stop.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5)

    def _watch(self, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                self.check_status()
            except Exception:
                _logger.exception("ferroflag OpenFeature provider: reading the sync status failed")

    def check_status(self) -> ProviderStatus:
        """Reads the sync client's status and emits an event for each change since the last check.

        Without a sync client: READY. The watcher thread calls this; call it yourself when
        `status_interval` is None.
        """
        sync = self._sync
        if sync is None:
            return ProviderStatus.READY
        state, message = _sync_state(sync.status())
        version = self._evaluator.version
        with self._state_lock:
            previous, self._state = self._state, state
            changed_version, self._version = self._version != version, version
        if state is not previous:
            if state is ProviderStatus.READY:
                self.emit_provider_ready(ProviderEventDetails())
            elif state is ProviderStatus.STALE:
                self.emit_provider_stale(ProviderEventDetails(message=message))
            elif state is ProviderStatus.ERROR:
                # Not PROVIDER_FATAL: the sync client keeps retrying.
                self.emit_provider_error(ProviderEventDetails(message=message, error_code=ErrorCode.GENERAL))
        if changed_version and state in (ProviderStatus.READY, ProviderStatus.STALE):
            self.emit_provider_configuration_changed(ProviderEventDetails(metadata={"version": version}))
        return state

    # --- resolution -----------------------------------------------------------------------------

    def _reason(self, key: str, result: EvalResult) -> Reason:
        reason = _REASONS.get(result.reason)
        if reason is not None:
            return reason
        version = self._evaluator.version
        cache = self._default_reasons
        if cache[0] != version:
            cache = self._default_reasons = (version, {})
        reason = cache[1].get(key)
        if reason is None:
            reason = cache[1][key] = _default_reason(self._evaluator.get_config(key))
        return reason

    def _missing(self, key: str, default_value: _T) -> FlagResolutionDetails[_T]:
        if self._sync is not None and self._evaluator.version == 0:
            code, message = ErrorCode.PROVIDER_NOT_READY, "no flags loaded yet"
        else:
            code, message = ErrorCode.FLAG_NOT_FOUND, f"flag {key!r} not found"
        return FlagResolutionDetails(value=default_value, reason=Reason.ERROR, error_code=code, error_message=message)

    def _unsupported(self, key: str, default_value: _T, kind: str) -> FlagResolutionDetails[_T]:
        if key not in self._evaluator:
            return self._missing(key, default_value)
        return FlagResolutionDetails(
            value=default_value,
            reason=Reason.ERROR,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message=f"ferroflag flags resolve as boolean (enabled) or string (variant), not {kind}",
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        result = self._evaluator.evaluate(flag_key, to_eval_context(evaluation_context))
        if result.reason == "not_found":
            return self._missing(flag_key, default_value)
        return FlagResolutionDetails(
            value=result.enabled,
            reason=self._reason(flag_key, result),
            variant=result.variant or None,
            flag_metadata={"reason": result.reason},
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        result = self._evaluator.evaluate(flag_key, to_eval_context(evaluation_context))
        if result.reason == "not_found":
            return self._missing(flag_key, default_value)
        served = result.enabled and bool(result.variant)
        return FlagResolutionDetails(
            value=result.variant if served else default_value,
            reason=self._reason(flag_key, result),
            variant=result.variant or None,
            flag_metadata={"reason": result.reason},
        )

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._unsupported(flag_key, default_value, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._unsupported(flag_key, default_value, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._unsupported(flag_key, default_value, "object")
