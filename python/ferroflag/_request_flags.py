"""The per-request view of flags that the web adapters share: one context, each flag evaluated once."""

from __future__ import annotations

from typing import Any

from ferroflag import EvalResult, FlagEvaluator

__all__ = ["CLIENT_METADATA_KEY", "RequestFlagsBase", "client_flag_keys"]

CLIENT_METADATA_KEY = "client"
"""The flag `metadata` entry (docs/spec.md §1) that lets a browser see a flag: `"client": true`."""

# id(evaluator) -> (the evaluator, its version, the keys of its client flags). The entry holds the
# evaluator alive, so its id cannot be reused meanwhile; small, as few evaluators serve at once.
_client_keys_cache: dict[int, tuple[FlagEvaluator, int, tuple[str, ...]]] = {}
_CLIENT_CACHE_SIZE = 8


def client_flag_keys(evaluator: FlagEvaluator) -> tuple[str, ...]:
    """The keys of the flags whose metadata has `"client": true` (the JSON true, not a string), in document
    order; read once per evaluator version, so a bootstrap payload does not walk every definition per request."""
    version = evaluator.version
    entry = _client_keys_cache.get(id(evaluator))
    if entry is not None and entry[0] is evaluator and entry[1] == version:
        return entry[2]
    # Read after the version: if an update lands in between, the next request reads again.
    keys = tuple(config.key for config in evaluator.configs() if config.metadata.get(CLIENT_METADATA_KEY) is True)
    if len(_client_keys_cache) >= _CLIENT_CACHE_SIZE:
        _client_keys_cache.clear()
    _client_keys_cache[id(evaluator)] = (evaluator, version, keys)
    return keys


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
