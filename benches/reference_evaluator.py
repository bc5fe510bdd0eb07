"""Pure-Python reference of ferroflag's evaluation semantics, format 2 (SPEC.md sections 1-6 and the format-2
decisions that complete it).

A straightforward, standard-library-only implementation with the same API shapes as ferroflag: reasonably efficient
(rules are pre-sorted, regexes, numbers, versions and instants parsed once on update, flags looked up by key), with
no caching of answers. It has two users: the Python benchmarks measure the native engine against it, and
tests/fixtures/generate_vectors.py uses it to generate the golden vectors (bucketing_vectors.json, eval_cases.json)
that the Rust core is tested against; tests/test_properties.py compares the engine with it on generated documents.

Loading follows SPEC section 6: a document with a field of the wrong type is rejected whole with a `ConfigError`
that names the flag (or segment) and the field's path inside it; problems inside an otherwise valid document become
`ConfigWarning`s, each with the JSON path of the problem from the document root.

Where SPEC.md and the format-2 decisions are silent, this reference reads them so (the golden vectors pin only the
points marked *pinned*; the others are left out of the vectors):
- Warning paths of a top-level array document are `flags[i]...`, as in the object form (*pinned*).
- A flag or segment replaced by a later duplicate still reports its own problems (unknown fields, clamps, operators,
  patterns, instants, segment keys, values); graph problems (prerequisites, cycles) concern the surviving ones only.
- Prerequisite depth counts links: a flag without prerequisites has depth 0, a chain of 32 links is allowed and one
  of 33 is not (*pinned*). A flag on a cycle ends a chain (depth 0); a flag that only depends on a cycle flag is not
  itself on the cycle and does not warn, though it answers prerequisite_failed (*pinned*).
- `value` is `values[variant]` whenever `values` has that key, the empty variant name included (*pinned*).
- An instant outside the i128 range of nanoseconds is not an instant; a negative epoch below 1 ns floors to -1 ns.
- `bucket_by: ""` is accepted and reads the property named "" (so, usually, an empty bucketing value).
- A segment operator's `attribute`, when present, must still be a string (it is ignored otherwise).
- `format` must be a JSON integer: `2.0` is rejected as `priority: 1.0` is.
- A `now` property that is a list is read like any list attribute; an empty list reads as unset (the clock).
"""

from __future__ import annotations

import copy
import hashlib
import json
import operator
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, NoReturn

__all__ = [
    "FORMAT",
    "Condition",
    "ConfigError",
    "ConfigWarning",
    "EvalContext",
    "EvalResult",
    "FlagConfig",
    "FlagEvaluator",
    "Prerequisite",
    "Rule",
    "Segment",
    "SegmentRule",
    "bucket",
    "hash_u32",
    "parse_instant",
]

FORMAT = 2  # the newest document format this reader knows
MAX_PREREQUISITE_DEPTH = 32

_U32_MAX = 0xFFFFFFFF
_INF = float("inf")
_MAX_FLOAT = 1.7976931348623157e308
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_I128_LIMIT = 2**127
_BUILTIN_ATTRIBUTES = frozenset({"user_id", "email", "plan", "country"})
_NUMERIC_OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_SEMVER_OPS = {"semver_eq": operator.eq, "semver_gt": operator.gt, "semver_lt": operator.lt}
_INSTANT_OPS = {"before": operator.lt, "after": operator.gt}
_SEGMENT_OPS = frozenset({"in_segment", "not_in_segment"})
MATCH_INPUT_LIMIT = 4096
"""The longest value, in bytes of UTF-8, that a `matches` condition tests (docs/spec.md §5, "Limits")."""

_STRING_OPS = ("eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with", "matches")
_OPERATORS = frozenset({*_STRING_OPS, *_NUMERIC_OPS, *_SEMVER_OPS, *_INSTANT_OPS, *_SEGMENT_OPS})

# ASCII digits only (Python's \d would accept other scripts); no whitespace, no underscores, no inf/nan.
_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_EPOCH_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_NUM_ID = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_RE = re.compile(
    rf"v?({_NUM_ID})\.({_NUM_ID})\.({_NUM_ID})(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)

# Known fields of each object, in the order did-you-mean breaks ties in.
_DOCUMENT_FIELDS = ("format", "flags", "segments", "metadata")
_FLAG_FIELDS = (
    "key",
    "enabled",
    "percentage",
    "bucket_by",
    "prerequisites",
    "rules",
    "variants",
    "default_variant",
    "off_variant",
    "values",
    "metadata",
)
_RULE_FIELDS = ("name", "conditions", "variant", "variants", "percentage", "priority")
_CONDITION_FIELDS = ("attribute", "operator", "values")
_PREREQUISITE_FIELDS = ("key", "variants")
_SEGMENT_FIELDS = ("key", "rules")
_SEGMENT_RULE_FIELDS = ("conditions",)


# --- the Python API's data classes ----------------------------------------------------------------------------------


@dataclass
class Condition:
    attribute: str
    operator: str
    values: list[Any] = field(default_factory=list)


@dataclass
class Rule:
    conditions: list[Condition | dict[str, Any]] = field(default_factory=list)
    variant: str = ""
    priority: int = 0
    percentage: float = 100.0
    variants: dict[str, float] = field(default_factory=dict)
    name: str = ""


@dataclass
class Prerequisite:
    key: str
    variants: list[str] = field(default_factory=list)


@dataclass
class FlagConfig:
    key: str
    enabled: bool = True
    percentage: float = 0.0
    rules: list[Rule | dict[str, Any]] = field(default_factory=list)
    variants: dict[str, float] = field(default_factory=dict)
    default_variant: str = ""
    bucket_by: str = "user_id"
    prerequisites: list[Prerequisite | dict[str, Any]] = field(default_factory=list)
    off_variant: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str | float | bool] = field(default_factory=dict)


@dataclass
class SegmentRule:
    conditions: list[Condition | dict[str, Any]] = field(default_factory=list)


@dataclass
class Segment:
    key: str
    rules: list[SegmentRule | dict[str, Any]] = field(default_factory=list)


@dataclass
class EvalContext:
    user_id: str
    email: str = ""
    plan: str = ""
    country: str = ""
    properties: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if type(self.user_id) is not str and isinstance(self.user_id, int) and not isinstance(self.user_id, bool):
            self.user_id = str(self.user_id)
        properties = self.properties
        self.properties = (
            {name: value if type(value) is str else _property_value(value) for name, value in properties.items()}
            if properties
            else {}
        )

    def get(self, attribute: str) -> str | list[str]:
        """The value a condition on `attribute` sees: a string, or a non-empty list of strings."""
        return _lookup(self, attribute)


@dataclass(frozen=True)
class EvalResult:
    enabled: bool
    variant: str
    reason: str
    value: Any = None


@dataclass(frozen=True)
class ConfigWarning:
    flag: str | None
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(ValueError):
    """A document or flag definition was rejected whole; the previous snapshot stays in place."""

    def __init__(self, message: str, flag: str | None = None, path: str = "") -> None:
        super().__init__(message)
        self.flag = flag
        self.path = path


# --- hashing, numbers, versions, instants ---------------------------------------------------------------------------


def hash_u32(text: str) -> int:
    """The first four bytes of SHA-256 of the UTF-8 text, as a big-endian unsigned integer."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def bucket(flag_key: str, value: str) -> float:
    """The rollout bucket in [0, 100] of a bucketing value (SPEC section 2.1)."""
    return hash_u32(f"{flag_key}:{value}") / _U32_MAX * 100


def _property_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"property values must be str, int, float, bool or a list of those, not {type(value).__name__}")


def _property_value(value: Any) -> str | list[str]:
    if isinstance(value, (list, tuple)):
        return [_property_text(item) for item in value]
    return _property_text(value)


def _lookup(ctx: EvalContext, name: str) -> str | list[str]:
    if name in _BUILTIN_ATTRIBUTES:
        return getattr(ctx, name)
    value = ctx.properties.get(name, "")  # type: ignore[union-attr]
    return value if value != [] else ""  # an empty list reads like a missing attribute


def _number(text: str) -> float | None:
    if _NUMBER_RE.fullmatch(text) is None:
        return None
    value = float(text)
    return value if -_INF < value < _INF else None


def _semver_key(text: str) -> tuple[Any, ...] | None:
    """A sort key implementing SemVer 2.0.0 precedence (build metadata ignored), or None if not a version."""
    m = _SEMVER_RE.fullmatch(text)
    if m is None:
        return None
    major, minor, patch, pre = m.groups()
    # A release sorts after all of its prereleases; numeric identifiers sort numerically and before alphanumeric
    # ones; tuple comparison makes a shorter identifier list lower when all preceding identifiers are equal.
    pre_key = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in pre.split(".")) if pre else ()
    return int(major), int(minor), int(patch), 0 if pre else 1, pre_key


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_instant(text: str) -> int | None:
    """Nanoseconds since the Unix epoch of an RFC 3339 date-time with an offset, or of a number of seconds since
    the epoch (the decimal grammar of `gt`); None when the text is neither (or is out of the i128 range)."""
    m = _RFC3339_RE.fullmatch(text)
    if m is not None:
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        fraction, offset = m.group(7), m.group(8)
        if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
            return None
        if hour > 23 or minute > 59 or second > 59:
            return None
        shift = 0
        if offset not in ("Z", "z"):
            off_hour, off_minute = int(offset[1:3]), int(offset[4:6])
            if off_hour > 23 or off_minute > 59:
                return None
            shift = (off_hour * 3600 + off_minute * 60) * (-1 if offset[0] == "-" else 1)
        seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - shift
        nanos = int((fraction or "")[:9].ljust(9, "0"))  # digits beyond nanoseconds floor
        return seconds * 1_000_000_000 + nanos
    if _NUMBER_RE.fullmatch(text) is None:
        return None
    e = _EPOCH_RE.fullmatch(text)
    assert e is not None
    sign, whole, frac, exp = e.group(1), e.group(2), e.group(3) or "", e.group(4)
    digits = (whole + frac).lstrip("0")
    if not digits:
        return 0
    scale = int(exp or "0") - len(frac) + 9  # nanoseconds = int(digits) * 10**scale
    magnitude = len(digits) + scale  # the number of digits before the decimal point, in nanoseconds
    negative = sign == "-"
    if magnitude > 40:
        return None
    if magnitude <= 0:
        return -1 if negative else 0  # |value| < 1 ns: floors to 0 or -1
    mantissa = -int(digits) if negative else int(digits)
    nanos = mantissa * 10**scale if scale >= 0 else mantissa // 10**-scale  # // floors
    return nanos if -_I128_LIMIT <= nanos < _I128_LIMIT else None


# --- compiled conditions, rules, segments and flags -----------------------------------------------------------------


class _Picker:
    """A weighted split: the variants sorted by name with their running weight sums."""

    __slots__ = ("cumulative", "last_positive", "total")

    def __init__(self, variants: dict[str, float]) -> None:
        self.cumulative: list[tuple[str, float]] = []
        running, self.last_positive = 0.0, ""
        for name in sorted(variants):
            running += variants[name]
            self.cumulative.append((name, running))
            if variants[name] > 0:
                self.last_positive = name
        self.total = running

    def pick(self, flag_key: str, value: str, default: str) -> str:
        if self.total <= 0 or value == "":
            return default
        x = hash_u32(f"{flag_key}:variant:{value}") / _U32_MAX * self.total
        for name, running in self.cumulative:
            if running > x:
                return name
        return self.last_positive


class _Condition:
    __slots__ = ("attribute", "cyclic", "matches", "negated", "operator", "segments", "test", "values")

    def __init__(self, attribute: str, op: str, values: tuple[str, ...], test: Callable[[str], bool] | None) -> None:
        self.attribute = attribute
        self.operator = op
        self.values = values
        self.test = test  # the positive test of one string value; None: always false
        self.negated = op in ("neq", "not_in")  # true when no element passes the positive twin
        self.segments: list[_Segment] = []  # for the segment operators: the known segments named
        self.cyclic = False  # names a segment on a segment cycle: always false
        # `matches(ctx) -> bool`, chosen once here
        if op in _SEGMENT_OPS:
            self.matches = self._segment_match
        elif test is None:
            self.matches = _never
        elif attribute == "now" and op in _INSTANT_OPS:
            self.matches = self._now_match
        else:
            self.matches = self._value_match

    def _value_match(self, ctx: EvalContext) -> bool:
        name = self.attribute
        v = getattr(ctx, name) if name in _BUILTIN_ATTRIBUTES else ctx.properties.get(name, "")  # type: ignore[union-attr]
        if type(v) is str:
            return self.test(v) is not self.negated  # type: ignore[misc]
        return self._list_match(v)

    def _now_match(self, ctx: EvalContext) -> bool:
        v = ctx.properties.get("now", "")  # type: ignore[union-attr]
        if v == "" or v == []:
            v = _NowText(time.time_ns())  # the clock, read only for a `now` the context does not set
        if type(v) is list:
            return self._list_match(v)
        return self.test(v)  # type: ignore[misc]

    def _list_match(self, v: list[str]) -> bool:
        if not v:  # an empty list reads like a missing attribute
            return self.test("") is not self.negated  # type: ignore[misc]
        found = any(map(self.test, v))  # type: ignore[arg-type]
        return not found if self.negated else found

    def _segment_match(self, ctx: EvalContext) -> bool:
        if self.cyclic:
            return False
        inside = any(segment.contains(ctx) for segment in self.segments)
        return inside if self.operator == "in_segment" else not inside


def _never(ctx: EvalContext) -> bool:
    return False


class _NowText(str):
    """The clock's instant, standing in for a `now` attribute the context does not set (exact nanoseconds)."""

    __slots__ = ("nanos",)

    def __new__(cls, nanos: int):
        text = super().__new__(cls, str(nanos))
        text.nanos = nanos
        return text


def _instant_of(text: str) -> int | None:
    return text.nanos if type(text) is _NowText else parse_instant(text)


class _Segment:
    __slots__ = ("index", "key", "rules")

    def __init__(self, key: str, index: int, rules: list[list[_Condition]]) -> None:
        self.key, self.index, self.rules = key, index, rules

    def contains(self, ctx: EvalContext) -> bool:
        return any(all(c.matches(ctx) for c in conditions) for conditions in self.rules)


class _Rule:
    __slots__ = ("catch_all", "conditions", "index", "percentage", "picker", "priority", "variant")

    def __init__(
        self,
        index: int,
        conditions: list[_Condition],
        variant: str,
        picker: _Picker | None,
        percentage: float,
        priority: int,
    ) -> None:
        self.index, self.conditions, self.variant, self.picker = index, conditions, variant, picker
        self.percentage, self.priority = percentage, priority
        self.catch_all = not conditions and percentage >= 100


class _Flag:
    __slots__ = (
        "broken",
        "bucket_by",
        "default_variant",
        "enabled",
        "index",
        "key",
        "off_variant",
        "percentage",
        "picker",
        "prerequisites",
        "rules",
        "values",
    )

    def __init__(self, key: str, index: int) -> None:
        self.key, self.index = key, index
        self.enabled = False
        self.percentage = 0.0  # clamped to [0, 100]
        self.bucket_by = "user_id"
        self.prerequisites: list[tuple[str, frozenset[str]]] = []
        self.broken = False  # on a prerequisite cycle, or with a prerequisite chain deeper than 32
        self.rules: list[_Rule] = []  # sorted by priority, highest first (stable)
        self.picker: _Picker | None = None  # None: no weighted split
        self.default_variant = ""
        self.off_variant = ""
        self.values: dict[str, Any] = {}

    def answer(self, ctx: EvalContext, flags: dict[str, _Flag]) -> tuple[bool, str, str]:
        """(enabled, variant, reason) by SPEC section 2, steps 2-6."""
        if not self.enabled:
            return False, self.off_variant, "disabled"
        if self.prerequisites:
            if self.broken:
                return False, self.off_variant, "prerequisite_failed"
            for key, variants in self.prerequisites:
                prerequisite = flags.get(key)
                if prerequisite is None:
                    return False, self.off_variant, "prerequisite_failed"
                enabled, variant, _ = prerequisite.answer(ctx, flags)
                if not enabled or (variants and variant not in variants):
                    return False, self.off_variant, "prerequisite_failed"
        b: str | None = None  # the bucketing value, computed when first needed
        for rule in self.rules:
            for condition in rule.conditions:
                if not condition.matches(ctx):
                    break
            else:
                p = rule.percentage
                if p <= 0:
                    continue
                if p < 100:
                    if b is None:
                        b = self.bucketing_value(ctx)
                    if b == "" or bucket(self.key, b) >= p:
                        continue
                if rule.picker is None:
                    return True, rule.variant, "rule_match"
                if b is None:
                    b = self.bucketing_value(ctx)
                return True, rule.picker.pick(self.key, b, self.default_variant), "rule_match"
        p = self.percentage
        if 0 < p < 100:
            if b is None:
                b = self.bucketing_value(ctx)
            if b == "" or bucket(self.key, b) >= p:
                return False, self.off_variant, "percentage_excluded"
            return True, self.variant(b), "percentage"
        if p == 0 and self.rules:
            return False, self.off_variant, "no_match"
        if self.picker is None:
            return True, self.default_variant, "default"
        if b is None:
            b = self.bucketing_value(ctx)
        return True, self.variant(b), "default"

    def bucketing_value(self, ctx: EvalContext) -> str:
        value = _lookup(ctx, self.bucket_by)
        return ",".join(value) if type(value) is list else value  # type: ignore[arg-type]

    def variant(self, b: str) -> str:
        if self.picker is None:
            return self.default_variant
        return self.picker.pick(self.key, b, self.default_variant)


# --- loading: JSON with number texts --------------------------------------------------------------------------------


class _JsonFloat(float):
    """A JSON number with a fraction or exponent, remembering its text."""

    __slots__ = ("text",)

    def __new__(cls, text: str):
        number = super().__new__(cls, text)
        number.text = text
        return number


class _NegativeZero(int):
    """The JSON integer `-0`: 0, but its text is kept for condition values."""

    text = "-0"


def _parse_int(text: str) -> int:
    return _NegativeZero(0) if text == "-0" else int(text)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _plain(value: Any) -> Any:
    """The value with the loader's number types replaced by plain int / float."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    return float(value)


def _show(value: Any) -> str:
    try:
        text = json.dumps(_plain(value), ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number_text(value: Any) -> str:
    if isinstance(value, _JsonFloat):
        return value.text
    if isinstance(value, _NegativeZero):
        return "-0"
    if isinstance(value, int):
        return str(value)
    return repr(value)


def _text_is_zero(text: str) -> bool:
    mantissa = re.split("[eE]", text)[0]
    return not any(c in "123456789" for c in mantissa)


def _osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _suggestion(name: str, known: tuple[str, ...]) -> str | None:
    best, best_distance = None, 3
    for candidate in known:
        distance = _osa_distance(name.lower(), candidate.lower())
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


class _Scope:
    """Where an object of the document sits: who owns it (for error messages) and its path from the root."""

    __slots__ = ("key", "kind", "loader", "root")

    def __init__(self, loader: _Loader, root: str, kind: str | None = None, key: str | None = None) -> None:
        self.loader, self.root, self.kind, self.key = loader, root, kind, key

    def path(self, rel: str) -> str:
        if not rel:
            return self.root
        if not self.root:
            return rel
        return f"{self.root}{rel}" if rel.startswith("[") else f"{self.root}.{rel}"

    def error(self, rel: str, message: str) -> NoReturn:
        flag = self.key if self.kind == "flag" else None
        if self.kind is not None:
            where = f"{self.kind} {json.dumps(self.key, ensure_ascii=False)}"
            where += f', field "{rel}"' if rel else ""
        else:
            where = f'field "{self.path(rel)}"'
        raise ConfigError(f"invalid flag document: {where}: {message}", flag, self.path(rel))

    def warn(self, rel: str, message: str) -> None:
        flag = self.key if self.kind == "flag" else None
        self.loader.warnings.append(ConfigWarning(flag, self.path(rel), message))

    def fields(self, obj: dict[str, Any], rel: str, known: tuple[str, ...]) -> None:
        """Warn about the unknown fields of obj (extension fields, `x-...`, are ignored)."""
        for name in obj:
            if name in known or name.startswith("x-"):
                continue
            suggestion = _suggestion(name, known)
            message = f'unknown field; did you mean "{suggestion}"?' if suggestion else "unknown field"
            self.warn(f"{rel}.{name}" if rel else name, message)

    # typed readers: `null` reads as the default; a wrong type rejects the document

    def string(self, obj: dict[str, Any], rel: str, name: str, default: str) -> str:
        value = obj.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(_join(rel, name), f"expected a string, got {_show(value)}")
        return value

    def array(self, obj: dict[str, Any], rel: str, name: str) -> list[Any]:
        value = obj.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(_join(rel, name), f"expected an array, got {_show(value)}")
        return value

    def object(self, obj: dict[str, Any], rel: str, name: str) -> dict[str, Any]:
        value = obj.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(_join(rel, name), f"expected an object, got {_show(value)}")
        return value

    def number(self, value: Any, rel: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(rel, f"expected a number, got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:
            self.error(rel, f"{_number_text(value)} is not a finite number")
        if not -_INF < number < _INF:
            self.error(rel, f"{_number_text(value)} is not a finite number")
        if number == 0 and isinstance(value, _JsonFloat) and not _text_is_zero(value.text):
            self.error(rel, f"{value.text} is too small to represent")
        return number

    def percentage(self, obj: dict[str, Any], rel: str, default: float) -> float:
        value = obj.get("percentage")
        if value is None:
            return default
        path = _join(rel, "percentage")
        p = self.number(value, path)
        if not 0 <= p <= 100:
            self.warn(path, f"percentage {_number_text(value)} is outside [0, 100]; clamped")
            p = min(max(p, 0.0), 100.0)
        return p

    def weights(self, obj: dict[str, Any], rel: str) -> _Picker | None:
        raw = self.object(obj, rel, "variants")
        if not raw:
            return None
        path = _join(rel, "variants")
        variants: dict[str, float] = {}
        for name, value in raw.items():
            weight = self.number(value, f"{path}.{name}")
            if weight < 0:
                self.error(f"{path}.{name}", f"a weight must be >= 0, got {_number_text(value)}")
            variants[name] = weight
        picker = _Picker(variants)
        running = 0.0
        for name in sorted(variants):
            running += variants[name]
            if running == _INF:
                self.error(path, f"weights sum to more than {_MAX_FLOAT!r}")
        if picker.total == 0:
            self.warn(path, "variant weights sum to 0; default_variant is used")
        return picker


def _join(rel: str, name: str) -> str:
    return f"{rel}.{name}" if rel else name


def _kind(value: Any) -> str:
    if value is True or value is False:
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class _Loader:
    """Validates and compiles one document; `warnings` collects what loaded with a problem."""

    def __init__(self) -> None:
        self.warnings: list[ConfigWarning] = []
        self.segment_refs: list[tuple[_Condition, _Scope, str]] = []  # segment conditions to link

    def document(self, data: Any) -> tuple[dict[str, _Flag], dict[str, Any]]:
        top = _Scope(self, "")
        if isinstance(data, list):
            return self.load(data, [], {}, top)
        if not isinstance(data, dict):
            raise ConfigError(
                'invalid flag document: the document must be an array of flags or an object {"flags": [...]}, '
                f"got {_show(data)}"
            )
        top.fields(data, "", _DOCUMENT_FIELDS)
        version = data.get("format")
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                top.error("format", f"expected an integer >= 1, got {_show(version)}")
            if version > FORMAT:
                top.error("format", f"format {version} is newer than this reader's format {FORMAT}")
        if data.get("flags") is None:
            top.error("flags", "missing required field")
        flags = top.array(data, "", "flags")
        segments = top.array(data, "", "segments")
        metadata = self.metadata(data, top, "")
        return self.load(flags, segments, metadata, top)

    def load(
        self, raw_flags: list[Any], raw_segments: list[Any], metadata: dict[str, Any], top: _Scope
    ) -> tuple[dict[str, _Flag], dict[str, Any]]:
        segments: dict[str, _Segment] = {}
        for s, raw in enumerate(raw_segments):
            segment = self.segment(raw, s)
            if segment.key in segments:
                _Scope(self, f"segments[{s}]", "segment", segment.key).warn(
                    "key", f"duplicate segment key {segment.key!r} replaces the earlier segment"
                )
                del segments[segment.key]  # the later one takes the place at the end of the order
            segments[segment.key] = segment
        flags: dict[str, _Flag] = {}
        deps: dict[str, list[tuple[str, int]]] = {}
        for i, raw in enumerate(raw_flags):
            flag, prerequisite_keys = self.flag(raw, i)
            if flag.key in flags:
                _Scope(self, f"flags[{i}]", "flag", flag.key).warn(
                    "key", f"duplicate flag key {flag.key!r} replaces the earlier flag"
                )
            flags[flag.key] = flag
            deps[flag.key] = prerequisite_keys
        self.link_segments(segments)
        self.link_prerequisites(flags, deps)
        return flags, metadata

    def metadata(self, obj: dict[str, Any], scope: _Scope, rel: str) -> dict[str, Any]:
        raw = scope.object(obj, rel, "metadata")
        for name, value in raw.items():
            if value is None or isinstance(value, (list, dict)):
                scope.error(
                    f"{_join(rel, 'metadata')}.{name}", f"expected a string, number or bool, got {_show(value)}"
                )
        return _plain(raw)

    def segment(self, raw: Any, s: int) -> _Segment:
        root = f"segments[{s}]"
        scope = _Scope(self, root)
        if not isinstance(raw, dict):
            scope.error("", f"expected a segment object, got {_show(raw)}")
        key = raw.get("key")
        if key is None:
            scope.error("key", "missing required field")
        if not isinstance(key, str) or key == "":
            scope.error("key", f"expected a non-empty string, got {_show(key)}")
        scope = _Scope(self, root, "segment", key)
        scope.fields(raw, "", _SEGMENT_FIELDS)
        rules = []
        for r, rule in enumerate(scope.array(raw, "", "rules")):
            rel = f"rules[{r}]"
            if not isinstance(rule, dict):
                scope.error(rel, f"expected an object, got {_show(rule)}")
            scope.fields(rule, rel, _SEGMENT_RULE_FIELDS)
            rules.append(self.conditions(rule, scope, rel))
        return _Segment(key, s, rules)

    def flag(self, raw: Any, i: int) -> tuple[_Flag, list[tuple[str, int]]]:
        root = f"flags[{i}]"
        scope = _Scope(self, root)
        if not isinstance(raw, dict):
            scope.error("", f"expected a flag object, got {_show(raw)}")
        key = raw.get("key")
        if key is None:
            scope.error("key", "missing required field")
        if not isinstance(key, str) or key == "":
            scope.error("key", f"expected a non-empty string, got {_show(key)}")
        scope = _Scope(self, root, "flag", key)
        scope.fields(raw, "", _FLAG_FIELDS)
        flag = _Flag(key, i)
        enabled = raw.get("enabled")
        if enabled is None:
            scope.error("enabled", "missing required field")
        if not isinstance(enabled, bool):
            scope.error("enabled", f"expected a bool, got {_show(enabled)}")
        flag.enabled = enabled
        flag.percentage = scope.percentage(raw, "", 0.0)
        flag.bucket_by = scope.string(raw, "", "bucket_by", "user_id")
        prerequisite_keys: list[tuple[str, int]] = []
        for j, prerequisite in enumerate(scope.array(raw, "", "prerequisites")):
            rel = f"prerequisites[{j}]"
            if not isinstance(prerequisite, dict):
                scope.error(rel, f"expected an object, got {_show(prerequisite)}")
            scope.fields(prerequisite, rel, _PREREQUISITE_FIELDS)
            pkey = prerequisite.get("key")
            if pkey is None:
                scope.error(f"{rel}.key", "missing required field")
            if not isinstance(pkey, str) or pkey == "":
                scope.error(f"{rel}.key", f"expected a non-empty string, got {_show(pkey)}")
            variants = scope.array(prerequisite, rel, "variants")
            for m, name in enumerate(variants):
                if not isinstance(name, str):
                    scope.error(f"{rel}.variants[{m}]", f"expected a string, got {_show(name)}")
            flag.prerequisites.append((pkey, frozenset(variants)))
            prerequisite_keys.append((pkey, j))
        rules = []
        for r, rule in enumerate(scope.array(raw, "", "rules")):
            rules.append(self.rule(rule, scope, r))
        rules.sort(key=lambda rule: -rule.priority)  # stable: equal priorities keep document order
        flag.rules = rules
        flag.picker = scope.weights(raw, "")
        flag.default_variant = scope.string(raw, "", "default_variant", "")
        flag.off_variant = scope.string(raw, "", "off_variant", "")
        flag.values = _plain(scope.object(raw, "", "values"))
        self.metadata(raw, scope, "")
        self.flag_checks(flag, scope, raw)
        return flag, prerequisite_keys

    def flag_checks(self, flag: _Flag, scope: _Scope, raw: dict[str, Any]) -> None:
        catch_all = None
        for rule in flag.rules:
            if catch_all is not None:
                scope.warn(f"rules[{rule.index}]", f"unreachable: rules[{catch_all.index}] matches everyone first")
            elif rule.catch_all:
                catch_all = rule
        if catch_all is not None and 0 < flag.percentage < 100:
            scope.warn("percentage", f"never used: rules[{catch_all.index}] matches everyone first")
        if flag.values:
            used = {flag.default_variant, flag.off_variant}
            used.update(name for name, _ in (flag.picker.cumulative if flag.picker else ()))
            for rule in flag.rules:
                used.add(rule.variant)
                used.update(name for name, _ in (rule.picker.cumulative if rule.picker else ()))
            missing = sorted(name for name in used if name and name not in flag.values)
            if missing:
                scope.warn("values", f"no value for the variant(s) {', '.join(map(repr, missing))}")
            kinds = {_kind(value) for value in flag.values.values() if value is not None}
            if len(kinds) > 1:
                scope.warn("values", f"the values mix JSON types ({', '.join(sorted(kinds))})")

    def rule(self, raw: Any, scope: _Scope, r: int) -> _Rule:
        rel = f"rules[{r}]"
        if not isinstance(raw, dict):
            scope.error(rel, f"expected an object, got {_show(raw)}")
        scope.fields(raw, rel, _RULE_FIELDS)
        scope.string(raw, rel, "name", "")
        conditions = self.conditions(raw, scope, rel)
        variant = scope.string(raw, rel, "variant", "")
        picker = scope.weights(raw, rel)
        percentage = scope.percentage(raw, rel, 100.0)
        priority = raw.get("priority")
        if priority is None:
            priority = 0
        elif isinstance(priority, bool) or not isinstance(priority, int) or not _I64_MIN <= priority <= _I64_MAX:
            scope.error(f"{rel}.priority", f"expected an integer (64-bit), got {_show(priority)}")
        return _Rule(r, conditions, variant, picker, percentage, int(priority))

    def conditions(self, raw: dict[str, Any], scope: _Scope, rel: str) -> list[_Condition]:
        return [
            self.condition(c, scope, f"{rel}.conditions[{k}]")
            for k, c in enumerate(scope.array(raw, rel, "conditions"))
        ]

    def condition(self, raw: Any, scope: _Scope, rel: str) -> _Condition:
        if not isinstance(raw, dict):
            scope.error(rel, f"expected an object, got {_show(raw)}")
        scope.fields(raw, rel, _CONDITION_FIELDS)
        op = raw.get("operator")
        if op is None:
            scope.error(f"{rel}.operator", "missing required field")
        if not isinstance(op, str):
            scope.error(f"{rel}.operator", f"expected a string, got {_show(op)}")
        attribute = raw.get("attribute")
        if attribute is None and op not in _SEGMENT_OPS:
            scope.error(f"{rel}.attribute", "missing required field")
        if attribute is not None and not isinstance(attribute, str):
            scope.error(f"{rel}.attribute", f"expected a string, got {_show(attribute)}")
        texts = []
        for m, value in enumerate(scope.array(raw, rel, "values")):
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                texts.append(_number_text(value))  # numbers keep their JSON text
            else:
                scope.error(f"{rel}.values[{m}]", f"expected a string or a number, got {_show(value)}")
        values = tuple(texts)
        condition = _Condition(attribute or "", op, values, self.test(op, values, scope, rel))
        if op in _SEGMENT_OPS:
            self.segment_refs.append((condition, scope, rel))
        return condition

    def test(self, op: str, values: tuple[str, ...], scope: _Scope, rel: str) -> Callable[[str], bool] | None:
        """The positive test of one attribute value (the twin of neq / not_in), or None for `always false`."""
        if op not in _OPERATORS:
            scope.warn(f"{rel}.operator", f"unknown operator {op!r}; the condition never matches")
            return None
        if op in _SEGMENT_OPS:
            return None
        if op in ("in", "not_in"):
            return frozenset(values).__contains__
        if op in _INSTANT_OPS:
            if not values:
                scope.warn(f"{rel}.values", f"{op} needs an instant in values[0]; the condition never matches")
                return None
            target = parse_instant(values[0])
            if target is None:
                scope.warn(f"{rel}.values[0]", f"{values[0]!r} is not an instant; the condition never matches")
                return None
            compare = _INSTANT_OPS[op]

            def instant_test(v: str) -> bool:
                t = _instant_of(v)
                return t is not None and compare(t, target)

            return instant_test
        if not values:
            return None
        first = values[0]
        if op in ("eq", "neq"):
            return first.__eq__
        if op == "contains":
            return lambda v: first in v
        if op == "starts_with":
            return lambda v: v.startswith(first)
        if op == "ends_with":
            return lambda v: v.endswith(first)
        if op == "matches":
            try:
                search = re.compile(first).search
            except (re.error, RecursionError, OverflowError) as exc:
                scope.warn(f"{rel}.values[0]", f"bad regular expression {first!r} ({exc}); the condition never matches")
                return None
            # docs/spec.md §5, "Limits": a value over the input limit is not tested, and does not match.
            return lambda v: len(v.encode("utf-8", "surrogatepass")) <= MATCH_INPUT_LIMIT and search(v) is not None
        if op in _NUMERIC_OPS:
            b, compare = _number(first), _NUMERIC_OPS[op]
            if b is None:
                return None

            def number_test(v: str) -> bool:
                a = _number(v)
                return a is not None and compare(a, b)

            return number_test
        sb, semver_compare = _semver_key(first), _SEMVER_OPS[op]
        if sb is None:
            return None

        def semver_test(v: str) -> bool:
            sa = _semver_key(v)
            return sa is not None and semver_compare(sa, sb)

        return semver_test

    def link_segments(self, segments: dict[str, _Segment]) -> None:
        """Resolve the segment operators' keys; find the segments on cycles (SPEC section 3)."""
        refs = self.segment_refs
        for condition, scope, rel in refs:
            for m, key in enumerate(condition.values):
                segment = segments.get(key)
                if segment is None:
                    scope.warn(f"{rel}.values[{m}]", f"unknown segment {key!r}; nobody is in it")
                elif segment not in condition.segments:
                    condition.segments.append(segment)
        graph = {
            seg.key: [
                s.key for conditions in seg.rules for c in conditions if c.operator in _SEGMENT_OPS for s in c.segments
            ]
            for seg in segments.values()
        }
        on_cycle = _on_cycles(graph)
        for key in sorted(on_cycle, key=lambda k: segments[k].index):
            _Scope(self, f"segments[{segments[key].index}]", "segment", key).warn(
                "", "on a segment cycle; conditions naming it are false"
            )
        for condition, _, _ in refs:
            condition.cyclic = any(s.key in on_cycle for s in condition.segments)

    def link_prerequisites(self, flags: dict[str, _Flag], deps: dict[str, list[tuple[str, int]]]) -> None:
        """Warn about unknown prerequisites; find the flags on cycles or with chains deeper than 32 (SPEC section 2)."""
        for key, flag in flags.items():
            for pkey, j in deps[key]:
                if pkey not in flags:
                    _Scope(self, f"flags[{flag.index}]", "flag", key).warn(
                        f"prerequisites[{j}].key", f"no flag {pkey!r} in the document; the prerequisite fails"
                    )
        graph = {key: [p for p, _ in deps[key] if p in flags] for key in flags}
        on_cycle = _on_cycles(graph)
        depth: dict[str, int] = {key: 0 for key in on_cycle}  # a flag on a cycle evaluates no prerequisites
        for start in flags:  # iterative post-order: longest chain of prerequisite edges from each flag
            if start in depth:
                continue
            stack = [(start, iter(graph[start]))]
            best = {start: 0}
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    depth[node] = best[node]
                    if stack:
                        parent = stack[-1][0]
                        best[parent] = max(best[parent], depth[node] + 1)
                elif child in depth:
                    best[node] = max(best[node], depth[child] + 1)
                else:
                    best[child] = 0
                    stack.append((child, iter(graph[child])))
        for key, flag in flags.items():
            if key in on_cycle:
                flag.broken = True
                _Scope(self, f"flags[{flag.index}]", "flag", key).warn(
                    "prerequisites", "on a prerequisite cycle; the flag answers prerequisite_failed"
                )
            elif depth[key] > MAX_PREREQUISITE_DEPTH:
                flag.broken = True
                _Scope(self, f"flags[{flag.index}]", "flag", key).warn(
                    "prerequisites",
                    f"prerequisite chain {depth[key]} deep (limit {MAX_PREREQUISITE_DEPTH}); "
                    "the flag answers prerequisite_failed",
                )


def _on_cycles(graph: dict[str, list[str]]) -> set[str]:
    """The nodes on a cycle (a strongly connected component of two or more, or a self-loop); Tarjan, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: set[str] = set()
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    result.update(component)
    return result


def _as_data(item: Any) -> Any:
    return asdict(item) if is_dataclass(item) and not isinstance(item, type) else item


_NOT_FOUND = EvalResult(False, "", "not_found", None)


class FlagEvaluator:
    """Evaluates flags against a dict of compiled flags, replaced whole on update (never changed in place)."""

    def __init__(self, flags: Iterable[FlagConfig | dict[str, Any]] | None = None) -> None:
        self._flags: dict[str, _Flag] = {}
        self.metadata: dict[str, Any] = {}
        self.warnings: list[ConfigWarning] = []
        if flags is not None:
            self.update(flags)

    def update(
        self,
        flags: Iterable[FlagConfig | dict[str, Any]],
        segments: Iterable[Segment | dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Replace all flags (and segments). Raises ConfigError (keeping the previous flags) if any is malformed."""
        document: dict[str, Any] = {"flags": [_as_data(flag) for flag in flags]}
        if segments is not None:
            document["segments"] = [_as_data(segment) for segment in segments]
        if metadata is not None:
            document["metadata"] = metadata
        self._load(document)

    def update_json(self, document: str | bytes | bytearray) -> None:
        """Replace all flags from a wire-format document: a JSON array of flags or an object (SPEC section 1)."""
        try:
            text = bytes(document).decode() if isinstance(document, (bytes, bytearray)) else document
            data = json.loads(text, parse_float=_JsonFloat, parse_int=_parse_int, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"invalid flag document: invalid JSON: {exc}") from exc
        self._load(data)

    def _load(self, data: Any) -> None:
        loader = _Loader()
        flags, metadata = loader.document(data)
        self._flags, self.metadata, self.warnings = flags, metadata, loader.warnings

    def keys(self) -> list[str]:
        return list(self._flags)

    def evaluate(self, key: str, ctx: EvalContext | dict[str, Any]) -> EvalResult:
        flag = self._flags.get(key)
        if flag is None:
            return _NOT_FOUND
        if type(ctx) is dict:
            ctx = EvalContext(**ctx)
        enabled, variant, reason = flag.answer(ctx, self._flags)  # type: ignore[arg-type]
        value = flag.values.get(variant)
        if isinstance(value, (dict, list)):
            value = copy.deepcopy(value)  # the caller's own
        return EvalResult(enabled, variant, reason, value)

    def is_enabled(self, key: str, ctx: EvalContext | dict[str, Any], default: bool = False) -> bool:
        flag = self._flags.get(key)
        if flag is None:
            return default
        if type(ctx) is dict:
            ctx = EvalContext(**ctx)
        return flag.answer(ctx, self._flags)[0]  # type: ignore[arg-type]

    def get_variant(self, key: str, ctx: EvalContext | dict[str, Any]) -> str:
        return self.evaluate(key, ctx).variant

    def get_value(self, key: str, ctx: EvalContext | dict[str, Any], default: Any = None) -> Any:
        value = self.evaluate(key, ctx).value
        return default if value is None else value
