"""ferroflag's native module: flag configs compiled into immutable snapshots and evaluated in Rust.

Import from `ferroflag`, not from here; this module is private and its layout may change.
"""

import asyncio
import os
from collections.abc import Iterable
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeAlias, TypedDict, final

from ferroflag.changes import ChangeCallback, ChangeListener
from ferroflag.exposures import ExposureSink, ExposureStream

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
    "_bench_empty_call",
    "_bench_sha256",
]

__version__: str
"""The package version, from the crate's `Cargo.toml`."""

_Reason: TypeAlias = Literal[
    "not_found",
    "disabled",
    "prerequisite_failed",
    "rule_match",
    "percentage",
    "percentage_excluded",
    "no_match",
    "default",
]
# A property value as a condition sees it: text, or a list of texts (docs/spec.md §4).
_PropertyValue: TypeAlias = str | list[str]
# Any JSON value: what a flag's `values` carry (docs/spec.md §2.2).
_Json: TypeAlias = Any
# `properties` must be a real dict, with str keys and str, int, float or bool values, or lists or tuples
# of them (checked at run
# time: TypeError). Its values are typed Any because dict is invariant: any precise value type would
# reject ordinary `dict[str, str]` or `dict[str, int]` variables.
_Properties: TypeAlias = dict[str, Any]
# A context is an `EvalContext`, or a dict with (some of) its fields:
# `user_id`, `email`, `plan`, `country`, `properties`. Any other key raises `TypeError`.
_Context: TypeAlias = EvalContext | dict[str, Any]
# One flag for `FlagEvaluator.update()`: a `FlagConfig`, or a dict in wire format (docs/spec.md §1) that may hold
# `Rule` and `Condition` objects in place of their dicts.
_FlagInput: TypeAlias = FlagConfig | dict[str, Any]
_Weights: TypeAlias = dict[str, float] | dict[str, int]
_StrPath: TypeAlias = str | os.PathLike[str]

class _SegmentTrace(TypedDict):
    key: str
    rule: int | None
    """The segment rule that put the context in the segment, or None."""

class _InstantTrace(TypedDict):
    actual: float
    """The instant compared (the context's, or the clock's for `now`), in epoch seconds."""
    compared_to: float

class _ConditionTrace(TypedDict, total=False):
    attribute: str
    operator: str
    values: list[str]
    actual: str
    """The context's value of the attribute (a list as `[a, b]`)."""
    matched: bool
    segments: list[_SegmentTrace]
    """For `in_segment` / `not_in_segment`: each segment checked."""
    instant: _InstantTrace
    """For `before` / `after`."""

class _RolloutTrace(TypedDict):
    bucket: float | None
    """The context's bucket in [0, 100]; None for an empty bucketing value (never in a partial rollout)."""
    percentage: float
    included: bool
    """`bucket < percentage`."""

class _RuleTrace(TypedDict):
    index: int
    """Position in the flag's `rules` list as written."""
    name: str
    priority: int
    variant: str
    matched: bool
    """Every condition matched."""
    applied: bool
    """Matched and admitted by the rule's percentage: the rule gave the answer."""
    rollout: _RolloutTrace | None
    conditions: list[_ConditionTrace]

class _PrerequisiteTrace(TypedDict):
    key: str
    variants: list[str]
    enabled: bool
    variant: str
    reason: _Reason
    passed: bool

class _VariantPick(TypedDict):
    weights: list[list[str | float]]
    """`[name, weight]` pairs, sorted by name: the order the pick walks."""
    total: float
    point: float | None
    """The context's point in [0, total] (None: empty bucketing value, default_variant); the first
    variant whose running sum exceeds it wins."""
    picked: str

class _Explanation(TypedDict):
    flag: str
    enabled: bool
    variant: str
    reason: _Reason
    value: _Json
    bucket_by: str
    bucketing_value: str
    prerequisites: list[_PrerequisiteTrace]
    rules: list[_RuleTrace]
    """Rules in the order they were tried (priority, then document order), up to the one that applied."""
    rollout: _RolloutTrace | None
    """Present when the flag's own rollout was checked (no rule applied)."""
    variant_pick: _VariantPick | None
    """Present when an enabled answer came from a weighted split."""

@final
class FlagEvaluator:
    """Evaluates feature flags against an immutable snapshot of flag configs.

    Readers never wait: every evaluation reads the current snapshot without a lock, and an update
    builds a new snapshot off to the side and swaps it in whole. A `FlagEvaluator` is safe to share
    between threads (including on free-threaded Python).

    Arguments:
        flags: Flags to load right away, as `update()` takes them. Without it the evaluator starts
            empty and every flag is `not_found`.

    Raises:
        ConfigError: A flag definition is invalid.
        TypeError: `flags` is not an iterable of `FlagConfig` or dict.
    """

    def __new__(
        cls,
        flags: Iterable[_FlagInput] | None = None,
        *,
        segments: Iterable[Segment | dict[str, Any]] | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
    ) -> FlagEvaluator: ...
    def update(
        self,
        flags: Iterable[_FlagInput],
        *,
        segments: Iterable[Segment | dict[str, Any]] | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
    ) -> None:
        """Replaces every flag with `flags`, and the segments and document metadata with the ones
        given (none when left out), as one format-2 document.

        On any error nothing changes: the previous snapshot keeps answering.

        Arguments:
            flags: `FlagConfig` objects or wire-format dicts (docs/spec.md §1). A later flag with the same
                key replaces an earlier one (keeping the earlier one's place in document order), and
                is reported in `warnings`.

        Raises:
            ConfigError: A flag or segment definition is invalid; `.flag` and `.path` name the flag
                and field (a field of the wrong type raises `ConfigTypeError`, also a `TypeError`).
            TypeError: `flags` is a str, bytes or dict (use `update_json()` for a document), or
                holds something that is not a `FlagConfig` or dict, or a value with no JSON form.
        """

    def update_json(self, document: str | bytes | bytearray) -> None:
        """Replaces every flag with a wire-format document.

        Arguments:
            document: JSON text: an array of flags, or an object with `flags` and optionally
                `format`, `segments` and `metadata` (docs/spec.md §1). Unknown fields load with a
                warning in `warnings`; `x-` fields pass silently.

        Raises:
            ConfigError: The document is not valid JSON, has the wrong shape, or holds an invalid
                flag. The previous snapshot keeps answering.
            TypeError: `document` is not a str, bytes or bytearray.
        """

    def load_file(self, path: _StrPath) -> None:
        """Replaces every flag with the wire-format document in a file.

        Arguments:
            path: The file to read.

        Raises:
            FileNotFoundError: There is no such file (likewise `PermissionError`,
                `IsADirectoryError`, `OSError`). The previous snapshot keeps answering.
            ConfigError: The file's content is rejected, as in `update_json()`.
        """

    def evaluate(self, key: str, ctx: _Context) -> EvalResult:
        """Evaluates one flag for one context.

        Arguments:
            key: The flag key.
            ctx: An `EvalContext`, or a dict with the same fields.

        Returns:
            The answer, with the reason for it. An unknown key is not an error:
            `EvalResult(enabled=False, variant='', reason='not_found')`.

        Raises:
            TypeError: `ctx` is neither an `EvalContext` nor a dict, or the dict has an unknown key
                or a value of the wrong type.
        """

    def is_enabled(self, key: str, ctx: _Context, default: bool = False) -> bool:
        """Whether a flag is on for a context.

        Arguments:
            key: The flag key.
            ctx: An `EvalContext`, or a dict with the same fields.
            default: The answer when there is no flag with that key. It does not apply to a flag
                that exists but is disabled or excludes the context.

        Returns:
            `evaluate(key, ctx).enabled`, or `default` for an unknown key.

        Raises:
            TypeError: `ctx` is not a valid context, or `default` is not a bool.
        """

    def get_value(self, key: str, ctx: _Context, default: Any = None) -> Any:
        """The value a flag serves a context (docs/spec.md §2.2).

        Arguments:
            key: The flag key.
            ctx: An `EvalContext`, or a dict with the same fields.
            default: Returned when the answer carries no value (unknown flag, or a variant without
                an entry in the flag's `values`).

        Returns:
            `evaluate(key, ctx).value`, a new object the caller owns, or `default` when it is None.

        Raises:
            TypeError: `ctx` is not a valid context.
        """

    def get_variant(self, key: str, ctx: _Context) -> str:
        """The variant a flag serves a context.

        Arguments:
            key: The flag key.
            ctx: An `EvalContext`, or a dict with the same fields.

        Returns:
            `evaluate(key, ctx).variant`: `""` when the flag is off for the context or unknown.

        Raises:
            TypeError: `ctx` is not a valid context.
        """

    def evaluate_all(self, ctx: _Context) -> dict[str, EvalResult]:
        """Evaluates every flag for one context, all from the same snapshot.

        Arguments:
            ctx: An `EvalContext`, or a dict with the same fields.

        Returns:
            Flag key to result, in document order.

        Raises:
            TypeError: `ctx` is not a valid context.
        """

    def is_enabled_many(self, key: str, contexts: Iterable[_Context], default: bool = False) -> list[bool]:
        """`is_enabled()` for many contexts at once, from one snapshot, with the GIL released.

        Arguments:
            key: The flag key.
            contexts: `EvalContext` objects or dicts.
            default: The answer for every context when there is no flag with that key.

        Returns:
            One answer per context, in order.

        Raises:
            TypeError: `contexts` is not iterable, or holds something that is not a valid context.
        """

    def explain(self, key: str, ctx: _Context) -> _Explanation | None:
        """Why a flag answers as it does for a context: the rules tried, the bucket against the
        threshold, the variant pick. Slower than `evaluate()`; meant for people (debugging, CLIs).

        Arguments:
            key: The flag key.
            ctx: An `EvalContext`, or a dict with the same fields.

        Returns:
            A dict of plain data with the answer (`enabled`, `variant`, `reason`, `value`) and its
            trace (`prerequisites`, `rules` with their conditions, segments, instants and
            rollouts, `rollout`, `variant_pick`), or None when there is no flag with that key.
            It is the same decision walk as `evaluate()`, so the two always agree.

        Raises:
            TypeError: `ctx` is not a valid context.
        """

    def on_change(self, callback: ChangeCallback) -> ChangeListener:
        """Calls `callback(keys)` after each change of the flags, from any source, with the keys of the
        flags whose answers may differ (docs/spec.md §8; see `ferroflag.changes`). Never for a new snapshot
        in which nothing evaluation reads changed.

        Arguments:
            callback: Called with a `frozenset[str]` on a thread of its own; one that raises is logged
                and keeps being called.

        Returns:
            The evaluator's `ChangeListener` (one per evaluator; later calls add callbacks to it).

        Raises:
            TypeError: `callback` is not callable.
        """

    def _changes_reset(self) -> None: ...
    def _changes_next(self, timeout: float) -> tuple[int, list[str]] | None: ...
    def enable_counters(self) -> None:
        """Starts counting every evaluation by flag, variant and reason (docs/spec.md §8). Idempotent.

        Counting costs each evaluation one uncontended lock and a hash (and `is_enabled` picks the
        variant); off by default. A forked child starts from zero. `ferroflag.metrics` serves the
        counts to Prometheus.
        """

    def counters(self) -> dict[tuple[str, str, str], int]:
        """The evaluations counted so far, as `{(flag, variant, reason): count}` (the variant `""`
        for none); empty until `enable_counters()`."""

    def on_exposure(
        self,
        sink: ExposureSink,
        *,
        batch_size: int = 1000,
        interval: float = 1.0,
        capacity: int = 100_000,
        window: int = 65_536,
    ) -> ExposureStream:
        """Sends the exposures of tracked flags (`"metadata": {"track": true}`) to `sink` in batches,
        from a thread of its own (docs/spec.md §8; see `ferroflag.exposures`).

        Evaluation never waits for the sink: an answer of a tracked flag is fingerprinted and, when
        it is new to the deduplication window, queued natively; a full queue drops and counts it.
        The first call starts the stream and sets its sizes; later calls add sinks to it.

        Arguments:
            sink: Called with each batch, a `list[Exposure]`. A sink that raises is logged and keeps
                receiving.
            batch_size: The sink is called as soon as this many exposures wait.
            interval: ... and at least every `interval` seconds while any wait.
            capacity: The most exposures that may wait; more are dropped and counted.
            window: About how many recent (flag, variant, subject, snapshot) fingerprints are kept for
                deduplication.

        Returns:
            The evaluator's `ExposureStream` (`stats()`, `flush()`, `close()`).

        Raises:
            TypeError: `sink` is not callable, or a size is not an int.
            ValueError: A size is below 1 or `interval` is not positive.
        """

    def _exposures_enable(self, capacity: int, batch: int, window: int) -> bool: ...
    def _exposures_take(self, wait: float) -> list[tuple[str, str, str, str, int, float]]: ...
    def _exposures_wake(self) -> None: ...
    def _events_reset(self) -> None: ...
    def _exposures_stats(self) -> tuple[int, int, int, int] | None: ...
    @property
    def warnings(self) -> list[ConfigWarning]:
        """Problems found in the current document when it was loaded (docs/spec.md §6): unknown
        fields, operators and segments, patterns and instants that do not parse, duplicate keys,
        weights summing to 0, percentages outside [0, 100], prerequisite and segment cycles,
        unreachable rules, missing or mixed-type values.
        """

    @property
    def version(self) -> int:
        """How many snapshots have been published: 0 before the first load, then +1 per successful update."""

    def keys(self) -> list[str]:
        """The flag keys, in document order.

        Returns:
            A new list.
        """

    def get_config(self, key: str) -> FlagConfig | None:
        """The definition of one flag as loaded.

        Arguments:
            key: The flag key.

        Returns:
            The flag's `FlagConfig`, or None when there is no flag with that key.
        """

    def segments(self) -> list[Segment]:
        """The segments of the current document, in document order."""

    @property
    def metadata(self) -> dict[str, str | int | float | bool]:
        """The current document's own metadata (a new dict on each access)."""

    def document(self) -> dict[str, Any]:
        """The current document in wire form (format 2), duplicates resolved: `update_json()` of
        its JSON gives back the same flags, segments and metadata."""

    def configs(self) -> list[FlagConfig]:
        """Every flag definition as loaded.

        Returns:
            A new list, in document order.
        """

    def __len__(self) -> int:
        """The number of flags."""

    def __contains__(self, key: object, /) -> bool:
        """Whether there is a flag with this key (False for anything but a str)."""

@final
class EvalContext:
    """Who a flag is evaluated for. Immutable, hashable and picklable.

    A condition's attribute is looked up as `user_id`, `email`, `plan` or `country` from the field
    of that name, anything else from `properties`; a missing attribute reads as `""`.

    Arguments:
        user_id: The user (or other unit) that rollouts and variant picks bucket on. An int is
            stored as its decimal text.
        email: The user's email address.
        plan: The user's plan.
        country: The user's country.
        properties: Further attributes. Values are stored as text: ints and floats as `str()`
            gives them, `True`/`False` as `"true"`/`"false"`. A list or tuple of such values is a
            list attribute (`groups=["staff", "beta"]`): a condition on it holds when it holds for
            one element (`neq`, `not_in`: for none), docs/spec.md §4.

    Raises:
        TypeError: An argument has the wrong type (`user_id` must be a str or int, property names
            str, property values str, int, float or bool, or a list or tuple of them).
    """

    def __new__(
        cls,
        user_id: str | int,
        email: str = "",
        plan: str = "",
        country: str = "",
        properties: _Properties | None = None,
    ) -> EvalContext: ...
    @property
    def user_id(self) -> str:
        """The user id, as text."""

    @property
    def email(self) -> str:
        """The email address, `""` when not given."""

    @property
    def plan(self) -> str:
        """The plan, `""` when not given."""

    @property
    def country(self) -> str:
        """The country, `""` when not given."""

    @property
    def properties(self) -> dict[str, _PropertyValue]:
        """The properties as text (lists as lists of text), sorted by name. A new dict on each
        access: changing it does not change the context.
        """

    def get(self, attribute: str) -> _PropertyValue:
        """The value a condition on `attribute` would see.

        Arguments:
            attribute: A field name (`user_id`, `email`, `plan`, `country`) or a property name.

        Returns:
            The value (a new list for a list property), or `""` when the context does not have it
            (an empty list reads as `""` too).
        """

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class EvalResult:
    """The answer for one flag and one context. Immutable, hashable and picklable.

    Supports `match`: `case EvalResult(True, variant, 'rule_match'): ...`.

    Arguments:
        enabled: Whether the flag is on.
        variant: The variant served, `""` for none.
        reason: Why: `not_found`, `disabled`, `prerequisite_failed`, `rule_match`, `percentage`,
            `percentage_excluded`, `no_match` or `default`.
        value: The variant's value (any JSON value), None for none.

    Raises:
        ValueError: `reason` is not one of the reasons above.
        TypeError: `value` has no JSON form.
    """

    __match_args__ = ("enabled", "variant", "reason", "value")

    def __new__(
        cls, enabled: bool, variant: str = "", reason: _Reason = "default", value: _Json = None
    ) -> EvalResult: ...
    @property
    def enabled(self) -> bool:
        """Whether the flag is on for the context."""

    @property
    def variant(self) -> str:
        """The variant served: the matching rule's, or the weighted pick, or `default_variant`;
        `""` when the flag is off.
        """

    @property
    def reason(self) -> _Reason:
        """Why (docs/spec.md §2): `not_found` (no such flag), `disabled`, `prerequisite_failed`,
        `rule_match`, `percentage` (inside the rollout), `percentage_excluded` (outside it),
        `no_match` (the flag has rules, no rollout, and none took the context) or `default`.
        """

    @property
    def value(self) -> _Json:
        """The value of the answer's variant from the flag's `values` (None when it has none); a
        new object on each access, so changing it never changes a later answer.
        """

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Condition:
    """One test on a context attribute, e.g. `Condition('plan', 'in', ['enterprise'])`.

    Arguments:
        attribute: `user_id`, `email`, `plan`, `country`, or a property name.
        operator: `eq`, `neq`, `in`, `not_in`, `contains`, `starts_with`, `ends_with`, `gt`,
            `gte`, `lt`, `lte`, `matches`, `semver_eq`, `semver_gt`, `semver_lt`, `before`,
            `after`, `in_segment` or `not_in_segment` (docs/spec.md §5). An unknown operator is
            accepted here, reported as a warning on load, and never matches.
        values: The operand list; ints and floats are stored as their text. For the segment
            operators, segment keys (the attribute is not used: pass `""`).

    Raises:
        TypeError: `values` is not a list (a bare str is refused), or holds something other than
            str, int or float (`ConfigTypeError`).
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __new__(cls, attribute: str, operator: str, values: Iterable[str | int | float] | None = None) -> Condition: ...
    @property
    def attribute(self) -> str:
        """The attribute tested."""

    @property
    def operator(self) -> str:
        """The operator, as given."""

    @property
    def values(self) -> list[str]:
        """The operands, as text (a new list)."""

    def to_dict(self) -> dict[str, Any]:
        """The condition in wire format.

        Returns:
            `{"attribute": ..., "operator": ..., "values": [...]}`.
        """

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Condition:
        """Builds a condition from its wire format.

        Arguments:
            data: A dict with `attribute`, `operator` and optionally `values`.

        Returns:
            The condition.

        Raises:
            ConfigError: A field is missing or has the wrong type.
            TypeError: `data` is not a dict.
        """

    def __eq__(self, other: object, /) -> bool: ...

@final
class Rule:
    """Targeting: when every condition matches (and the rule's percentage admits the context), the
    flag is on with this rule's variant.

    Arguments:
        conditions: `Condition` objects or their dicts; all must match. Empty matches everyone.
        variant: The variant served on a match.
        priority: Higher priorities are tried first; equal priorities keep document order.
        percentage: The share of matching contexts the rule applies to (by the flag's bucket);
            the others go on to the next rule. 100 by default.
        variants: Variant name to weight: a match gets a weighted pick from these instead of `variant`.
        name: For people and `explain()` only.

    Raises:
        TypeError: `conditions` is not a list, or holds something other than a `Condition` or dict.
        ConfigError: A condition dict is invalid.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __new__(
        cls,
        conditions: Iterable[Condition | dict[str, Any]] | None = None,
        variant: str = "",
        priority: int = 0,
        *,
        percentage: float = 100.0,
        variants: _Weights | None = None,
        name: str = "",
    ) -> Rule: ...
    @property
    def conditions(self) -> list[Condition]:
        """The conditions (a new list)."""

    @property
    def variant(self) -> str:
        """The variant served on a match."""

    @property
    def priority(self) -> int:
        """The rule's priority."""

    @property
    def percentage(self) -> float:
        """The share of matching contexts the rule applies to, as given."""

    @property
    def variants(self) -> dict[str, float]:
        """Variant name to weight for the rule's own split, sorted by name (a new dict)."""

    @property
    def name(self) -> str:
        """The rule's name, `""` when it has none."""

    def to_dict(self) -> dict[str, Any]:
        """The rule in wire format.

        Returns:
            `{"conditions": [...], "variant": ..., "priority": ...}`, plus `name`, `percentage`
            and `variants` when they are not their defaults.
        """

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Rule:
        """Builds a rule from its wire format.

        Arguments:
            data: A dict with optional `name`, `conditions`, `variant`, `variants`, `percentage`
                and `priority`.

        Returns:
            The rule.

        Raises:
            ConfigError: A field has the wrong type.
            TypeError: `data` is not a dict.
        """

    def __eq__(self, other: object, /) -> bool: ...

@final
class FlagConfig:
    """One flag's definition, with the same fields as the wire format (docs/spec.md §1).

    Arguments:
        key: The flag key; must not be empty.
        enabled: False turns the flag off for everyone (reason `disabled`).
        percentage: The share of the contexts no rule took that get the flag (docs/spec.md §2
            step 5). 0 on a flag with rules: only the contexts a rule takes (`no_match` for the
            others); 0 without rules, or 100: everyone. Values outside [0, 100] clamp, with a warning.
        rules: `Rule` objects or their dicts.
        variants: Variant name to weight (>= 0), for a weighted, sticky split.
        default_variant: The variant served when `variants` is empty (or its weights sum to 0).
        bucket_by: The attribute rollouts and picks hash (`user_id` by default; e.g. `org_id`).
        prerequisites: `Prerequisite` objects or their dicts: flags that must be on (with one of
            the listed variants) for this one to be on.
        off_variant: The variant of every off answer.
        values: Variant name to any JSON value: what each answer carries (`EvalResult.value`).
        metadata: Facts about the flag (str, int, float or bool values), not used for evaluation.

    Raises:
        ConfigError: A field is invalid (`key` empty, `percentage` not finite, a negative weight...);
            `.flag` and `.path` name the flag and field. A field of the wrong type raises
            `ConfigTypeError`, which is also a `TypeError`.
        TypeError: An argument has the wrong Python type.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __new__(
        cls,
        key: str,
        enabled: bool = True,
        percentage: float = 0.0,
        rules: Iterable[Rule | dict[str, Any]] | None = None,
        variants: _Weights | None = None,
        default_variant: str = "",
        *,
        bucket_by: str = "user_id",
        prerequisites: Iterable[Prerequisite | dict[str, Any]] | None = None,
        off_variant: str = "",
        values: dict[str, _Json] | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
    ) -> FlagConfig: ...
    @property
    def key(self) -> str:
        """The flag key."""

    @property
    def enabled(self) -> bool:
        """Whether the flag is enabled."""

    @property
    def percentage(self) -> float:
        """The rollout percentage."""

    @property
    def rules(self) -> list[Rule]:
        """The rules, in the order given (a new list)."""

    @property
    def variants(self) -> dict[str, float]:
        """Variant name to weight, sorted by name (a new dict)."""

    @property
    def default_variant(self) -> str:
        """The variant served when there is no weighted split."""

    @property
    def bucket_by(self) -> str:
        """The attribute rollouts and picks hash."""

    @property
    def prerequisites(self) -> list[Prerequisite]:
        """The prerequisites, in the order given (a new list)."""

    @property
    def off_variant(self) -> str:
        """The variant of every off answer."""

    @property
    def values(self) -> dict[str, _Json]:
        """Variant name to value (a new dict)."""

    @property
    def metadata(self) -> dict[str, str | int | float | bool]:
        """Facts about the flag (a new dict)."""

    def to_dict(self) -> dict[str, Any]:
        """The flag in wire format; `FlagConfig.from_dict(c.to_dict()) == c`.

        Returns:
            A dict with the format-1 fields always and the newer ones when set; whole-number
            percentages and weights come back as ints.
        """

    @staticmethod
    def from_dict(data: dict[str, Any]) -> FlagConfig:
        """Builds a flag from its wire format, validated as `update()` validates a dict.

        Arguments:
            data: A dict with `key` and `enabled`, and optionally the other fields.

        Returns:
            The flag.

        Raises:
            ConfigError: A field is missing or has the wrong type.
            TypeError: `data` is not a dict.
        """

    def __eq__(self, other: object, /) -> bool: ...

@final
class Prerequisite:
    """A flag that must be on for another to be on (docs/spec.md §2 step 3).

    Arguments:
        key: The prerequisite flag's key.
        variants: When given, the prerequisite must also answer with one of these variants.

    Raises:
        ConfigError: `key` is empty.
        TypeError: An argument has the wrong type.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __new__(cls, key: str, variants: Iterable[str] | None = None) -> Prerequisite: ...
    @property
    def key(self) -> str:
        """The prerequisite flag's key."""

    @property
    def variants(self) -> list[str]:
        """The accepted variants; empty: any variant of an enabled answer."""

    def to_dict(self) -> dict[str, Any]:
        """The prerequisite in wire format."""

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Prerequisite:
        """Builds a prerequisite from its wire format.

        Raises:
            ConfigError: A field is missing or has the wrong type.
            TypeError: `data` is not a dict.
        """

    def __eq__(self, other: object, /) -> bool: ...

@final
class Segment:
    """A named audience that conditions refer to with `in_segment` / `not_in_segment` (docs/spec.md §3).

    Arguments:
        key: The segment key; must not be empty.
        rules: Each rule a list of `Condition` objects or dicts (all must match), or a dict
            `{"conditions": [...]}`; a context is in the segment when any one rule matches.

    Raises:
        ConfigError: A field is invalid.
        TypeError: An argument has the wrong type.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __new__(
        cls, key: str, rules: Iterable[Iterable[Condition | dict[str, Any]] | dict[str, Any]] | None = None
    ) -> Segment: ...
    @property
    def key(self) -> str:
        """The segment key."""

    @property
    def rules(self) -> list[list[Condition]]:
        """Each rule as its list of conditions (new lists)."""

    def to_dict(self) -> dict[str, Any]:
        """The segment in wire format: `{"key": ..., "rules": [{"conditions": [...]}, ...]}`."""

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Segment:
        """Builds a segment from its wire format.

        Raises:
            ConfigError: A field is missing or has the wrong type.
            TypeError: `data` is not a dict.
        """

    def __eq__(self, other: object, /) -> bool: ...

@final
class ConfigWarning:
    """A problem inside a document that still loaded: an unknown operator, a pattern that does not
    compile, a duplicate key, weights that sum to 0, a percentage outside [0, 100].

    Read from `FlagEvaluator.warnings`; not constructed by user code. `str()` gives a readable line.
    """

    @property
    def flag(self) -> str | None:
        """The key of the flag the warning is about."""

    @property
    def path(self) -> str:
        """JSON path of the field from the document root, e.g. `flags[2].rules[0].conditions[1].operator`."""

    @property
    def message(self) -> str:
        """What is wrong, and what ferroflag does about it."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class FerroflagError(Exception):
    """Base class of every error ferroflag raises."""

class ConfigError(FerroflagError, ValueError):
    """A flag document or flag definition was rejected whole; the previous snapshot stays in place.

    The message names the flag and the field, e.g.
    `invalid flag document: flag "beta", field "rules[0].priority": expected an integer, got 1.5`.
    """

    flag: str | None
    """The key of the offending flag, or None when the problem is not inside a flag with a string key."""
    path: str
    """JSON path of the offending field from the document root, e.g. `flags[3].rules[0].priority`;
    `""` for the document as a whole."""
    message: str
    """What is wrong, without the location."""

class ConfigTypeError(ConfigError, TypeError):
    """A field of a flag document or definition has the wrong type: a `ConfigError` and a `TypeError`."""

def _bench_empty_call(key: str, ctx: object, default: bool = False) -> bool:
    """Benchmark floor, not API: a call shaped like `is_enabled()` that does nothing.

    Arguments:
        key: Ignored.
        ctx: Ignored (not even checked).
        default: Returned.

    Returns:
        `default`.
    """

def _bench_sha256(data: bytes, iterations: int) -> int:
    """Benchmark floor, not API: the cost of the hashing inside one bucketing step.

    Arguments:
        data: The bytes to hash.
        iterations: How many SHA-256 hashes to run.

    Returns:
        The nanoseconds they took (measured with the GIL released).
    """

# ---------------------------------------------------------------------------------------------------
# Sync: keeping an evaluator current from a flag service, a static URL or a local file (docs/spec.md §7).

_Source: TypeAlias = Literal["none", "network", "cache", "file"]

@final
class FlagSyncClient:
    """Keeps a `FlagEvaluator` current by polling a flag service on a native background thread.

    Each poll is `GET {api_url}{path}` with `If-None-Match`: a `304` changes nothing (no parse, no
    swap); a `200` with a valid document replaces the evaluator's flags whole. Any failure
    (connection refused, timeout, non-2xx status, a truncated, oversized or invalid body, a document
    that is rejected) keeps the last good flags, shows in `status()`, is logged once per failure
    streak to the `ferroflag` logger, and is retried with capped, jittered exponential backoff
    (`Retry-After` is honoured on 429/503; 401/403 retry at the cap and never give up). Evaluation
    never waits on any of this.

    The thread never holds the GIL while it waits or fetches. After `os.fork()` (gunicorn
    `--preload`, multiprocessing) the child starts its own poller at once, without user code; the
    parent's is never disturbed. TLS is verified; redirects are not followed; header values never
    appear in a repr, a log record, a status or an error.

    Arguments:
        evaluator: The evaluator whose flags this client replaces.
        api_url: The service's base URL, e.g. `https://flags.internal`; with `path=""`, the full
            URL of a flag document (a `flags.json` on nginx, S3 or a CDN).
        interval: Seconds between polls while all is well.
        timeout: Seconds allowed for one whole request, connect to last byte.
        path: Appended to `api_url` with exactly one `/` between them; `""` uses `api_url` as is.
        headers: Sent with every request, e.g. `{"Authorization": "Bearer ..."}`. The values are
            treated as secrets.
        cache_path: A file that keeps the last good document: written (atomically) after each new
            document is applied, and served at once at start-up, before the first request, until
            the service answers. A corrupt cache file, one written for another URL and anything
            but a regular file are ignored with a warning.
        connect_timeout: Seconds allowed for name resolution and for the TCP connect each; 3 by
            default, and never more than `timeout`.
        max_body_bytes: A larger response (after decompression) fails the poll while it is read.
        backoff_cap: The longest wait in seconds between attempts while failing (raised to
            `interval` if lower).
        ca_bundle: A PEM file whose certificates replace the bundled Mozilla roots for HTTPS.
        cold_start_cap: The longest wait in seconds between attempts until the first success, so
            that a process starting during an outage retries briskly (kept between `interval`
            and `backoff_cap`; 401/403 and `Retry-After` still wait as long as they ask).

    Raises:
        TypeError: `evaluator` is not a `FlagEvaluator`, or `headers` is not a dict of str to str.
        ValueError: The URL is not http(s) with a host (or holds an unencoded `/` or `@` in its
            credentials), a header name or value is not valid HTTP or not valid text, a time or size
            is not positive, or `ca_bundle` cannot be read or holds no certificate. No error ever
            holds a header value or a credential.
    """

    def __new__(
        cls,
        evaluator: FlagEvaluator,
        api_url: str,
        *,
        interval: float = 10.0,
        timeout: float = 5.0,
        path: str = "/api/flags",
        headers: dict[str, str] | None = None,
        cache_path: str | os.PathLike[str] | None = None,
        connect_timeout: float | None = None,
        max_body_bytes: int = 16777216,
        backoff_cap: float = 300.0,
        ca_bundle: str | os.PathLike[str] | None = None,
        cold_start_cap: float = 5.0,
    ) -> FlagSyncClient: ...
    def start(self, wait: float = 5.0) -> bool:
        """Starts polling (the first poll is immediate) and waits, with the GIL released, for the
        first snapshot.

        A valid cache file (see `cache_path`) is served at once, before the first request, so this
        returns True within milliseconds even when the service accepts and never answers. It
        never raises because the service is down: the app starts with what it has (nothing, or the
        cache file) and the thread keeps trying. Calling it while running only waits; after
        `stop()` it starts polling again. Like a thread, a started client keeps polling until
        `stop()` or interpreter exit, even when no reference to it is kept.

        Arguments:
            wait: Seconds to wait for a snapshot; 0 returns at once. The wait can be interrupted
                (Ctrl-C raises `KeyboardInterrupt`); polling goes on regardless.

        Returns:
            Whether a snapshot has been applied (from the service or the cache file).

        Raises:
            ValueError: `wait` is negative.
            RuntimeError: The OS refused to start a thread.
        """

    def start_async(self, wait: float = 5.0) -> asyncio.Future[bool]:
        """`start()` for async code (an ASGI lifespan, say): polling starts at once, and the wait
        happens on the running loop's default executor, so the event loop is never blocked.

        Arguments:
            wait: Seconds to wait for a snapshot; 0 resolves at once.

        Returns:
            A future to await, resolving to whether a snapshot has been applied.

        Raises:
            RuntimeError: There is no running event loop.
            ValueError: `wait` is negative.
        """

    def wait_ready(self, timeout: float) -> bool:
        """Waits, with the GIL released, until a snapshot has been applied. Like `start()`, it can
        be interrupted (Ctrl-C raises `KeyboardInterrupt` within a tenth of a second).

        Arguments:
            timeout: Seconds to wait at most.

        Returns:
            Whether a snapshot has been applied: True as soon as one is; False after `timeout`,
            or at once when the client is not running (never started, or stopped).
        """

    def stop(self) -> bool:
        """Stops polling: wakes the thread, cuts short a request in flight, and joins the thread
        for at most half a second with the GIL released. Idempotent; also done at interpreter exit.

        Returns:
            True when the thread has exited; False when it is still in a TCP connect or name
            lookup, which it leaves within `connect_timeout` (it applies nothing after `stop()`).
        """

    def status(self) -> SyncStatus:
        """A copy of the client's state now."""

    @property
    def url(self) -> str:
        """The URL polled, with any credentials in it (userinfo, query string) shown as `<redacted>`."""

    def __enter__(self) -> FlagSyncClient:
        """`start(wait=5.0)`; returns the client."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """`stop()`."""

@final
class FlagFileWatcher:
    """Keeps a `FlagEvaluator` current from a local flag file, with the same lifecycle and status as
    `FlagSyncClient`.

    The file is loaded on `start()` and reloaded when it changes (its modification time, size or
    inode, confirmed by a content hash). An edit that does not load keeps the previous flags and
    shows in `status()` and the `ferroflag` log; fixing the file recovers. Write the file
    atomically (write a temp file, then rename it over the old one).

    Arguments:
        evaluator: The evaluator whose flags this watcher replaces.
        path: The flag document (docs/spec.md §1).
        interval: Seconds between checks; a check is one `stat()` unless the file changed.
        max_bytes: A larger file is refused and the previous flags kept.

    Raises:
        TypeError: `evaluator` is not a `FlagEvaluator`.
        ValueError: `interval` or `max_bytes` is not positive.
    """

    def __new__(
        cls,
        evaluator: FlagEvaluator,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        max_bytes: int = 16777216,
    ) -> FlagFileWatcher: ...
    def start(self, wait: float = 5.0) -> bool:
        """Starts watching and waits, with the GIL released, for the file to load.

        Arguments:
            wait: Seconds to wait; 0 returns at once.

        Returns:
            Whether the file has been loaded. A missing or broken file does not raise: it shows
            in `status()` and is retried.

        Raises:
            ValueError: `wait` is negative.
            RuntimeError: The OS refused to start a thread.
        """

    def start_async(self, wait: float = 5.0) -> asyncio.Future[bool]:
        """`start()` for async code; see `FlagSyncClient.start_async()`."""

    def wait_ready(self, timeout: float) -> bool:
        """Waits, with the GIL released, until the file has been loaded.

        Arguments:
            timeout: Seconds to wait at most.

        Returns:
            Whether the file has been loaded; False at once when the watcher is not running.
        """

    def stop(self) -> bool:
        """Stops watching; idempotent, prompt, and done at interpreter exit.

        Returns:
            True when the thread has exited.
        """

    def status(self) -> SyncStatus:
        """A copy of the watcher's state now (`url` is the file path, `etag` a content hash)."""

    @property
    def path(self) -> str:
        """The watched file."""

    def __enter__(self) -> FlagFileWatcher:
        """`start(wait=5.0)`; returns the watcher."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """`stop()`."""

@final
class SyncStatus:
    """A copy of a `FlagSyncClient` or `FlagFileWatcher` state at one moment: plain values, safe to
    log or serve from a health endpoint (no header value is ever in it). Compares equal field by
    field; not hashable.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]

    @property
    def ready(self) -> bool:
        """A snapshot has been applied (from the service, the cache file or the flag file)."""

    @property
    def running(self) -> bool:
        """The background thread is running."""

    @property
    def stale(self) -> bool:
        """Ready, but failing since: the flags served may be out of date."""

    @property
    def source(self) -> _Source:
        """Where the last applied snapshot came from: `none` (nothing yet), `network`, `cache` (the
        cache file, served at start until the service answers) or `file`."""

    @property
    def etag(self) -> str | None:
        """The `ETag` sent as `If-None-Match` on the next poll (for a file: a content hash)."""

    @property
    def snapshot_version(self) -> int:
        """The evaluator version this client last published (compare `FlagEvaluator.version`); 0 before the first.
        It counts publishes in this process: use `document_id` to compare workers."""

    @property
    def document_id(self) -> str | None:
        """What the applied document is: the first 16 hex digits of the SHA-256 of its bytes as received, the
        same in every process (and when served from the cache file); None before the first."""

    @property
    def last_success(self) -> float | None:
        """When a poll last succeeded (a new document, a 304, or an unchanged file), as a UNIX timestamp."""

    @property
    def last_error(self) -> str | None:
        """The last failure, e.g. `GET https://flags/api/flags: server answered HTTP 503 Service Unavailable`; at
        most 500 characters, never a secret."""

    @property
    def last_error_at(self) -> float | None:
        """When the last failure happened, as a UNIX timestamp."""

    @property
    def successes(self) -> int:
        """Polls that applied a new document."""

    @property
    def not_modified(self) -> int:
        """Polls that found nothing new (a 304, the same body again, or an unchanged file): no swap."""

    @property
    def failures(self) -> int:
        """Polls that failed, in all."""

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success; 0 while healthy."""

    @property
    def next_attempt_in(self) -> float | None:
        """Seconds until the next poll, while one is scheduled."""

    @property
    def url(self) -> str:
        """The URL polled (credentials redacted), or the file watched."""

    def to_dict(self) -> dict[str, Any]:
        """Every field above as a plain dict (JSON-ready), e.g. for a health endpoint."""

    def __eq__(self, other: object, /) -> bool: ...
