"""ferroflag: feature flags evaluated in native code against an immutable, lock-free snapshot."""

from __future__ import annotations

from ferroflag._ferroflag import (
    Condition,
    ConfigError,
    ConfigTypeError,
    ConfigWarning,
    EvalContext,
    EvalResult,
    FerroflagError,
    FlagConfig,
    FlagEvaluator,
    FlagFileWatcher,
    FlagSyncClient,
    Prerequisite,
    Rule,
    Segment,
    SyncStatus,
    __version__,
)

__all__ = [
    "Condition",
    "ConfigError",
    "ConfigTypeError",
    "ConfigWarning",
    "EvalContext",
    "EvalResult",
    "FerroflagError",
    "FlagConfig",
    "FlagEvaluator",
    "FlagFileWatcher",
    "FlagSyncClient",
    "Prerequisite",
    "Rule",
    "Segment",
    "SyncStatus",
    "__version__",
]
