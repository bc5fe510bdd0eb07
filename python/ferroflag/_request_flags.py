"""The per-request view of flags that the web adapters share: one context, each flag evaluated once."""

from __future__ import annotations

from typing import Any

from ferroflag import EvalResult

__all__ = ["RequestFlagsBase"]


class RequestFlagsBase:
    """Answers built on `evaluate()`, which a subclass provides (remembering each result in `_cache`)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, EvalResult] = {}

    def evaluate(self, key: str) -> EvalResult:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def is_enabled(self, key: str, default: bool = False) -> bool:
        """Whether `key` is on for this request; `default` when there is no such flag."""
        result = self.evaluate(key)
        return default if result.reason == "not_found" else result.enabled

    def variant(self, key: str) -> str:
        """The variant of `key` for this request, `""` when it is off or unknown."""
        return self.evaluate(key).variant

    def value(self, key: str, default: Any = None) -> Any:
        """The value `key` serves this request (docs/spec.md §2.2): a limit, a config dict...;
        `default` when the answer carries none (unknown flag, or a variant without a value).
        A list or dict is the caller's own copy."""
        value = self.evaluate(key).value
        return default if value is None else value

    def evaluated(self) -> dict[str, EvalResult]:
        """The flags this request has asked about so far, with their answers (e.g. for exposure logs)."""
        return dict(self._cache)

    def __contains__(self, key: object) -> bool:
        """`"key" in flags` is `is_enabled("key")`."""
        return isinstance(key, str) and self.is_enabled(key)
