"""Pure-Python baseline of ferroflag's evaluation semantics (SPEC.md sections 1-5).

This module evaluates flags the way the original pure-Python SDK did, with the same API shapes: straightforward and
reasonably efficient (rules are pre-sorted and regexes compiled on update, flags are looked up by key), with no
caching. It has two users: the Python benchmarks measure the native engine against it, and
tests/fixtures/generate_vectors.py uses it to generate the golden vectors (bucketing_vectors.json, eval_cases.json)
that the Rust core is tested against. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, NoReturn

__all__ = ["Condition", "EvalContext", "EvalResult", "FlagConfig", "FlagEvaluator", "Rule", "bucket", "hash_u32"]

_U32_MAX = 0xFFFFFFFF
_INF = float("inf")
_BUILTIN_ATTRIBUTES = frozenset({"user_id", "email", "plan", "country"})
_NUMERIC_OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_SEMVER_OPS = {"semver_eq": operator.eq, "semver_gt": operator.gt, "semver_lt": operator.lt}
_STRING_OPS = ("eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with", "matches")
_OPERATORS = frozenset({*_STRING_OPS, *_NUMERIC_OPS, *_SEMVER_OPS})
# ASCII digits only (Python's \d would accept other scripts); no whitespace, no underscores, no inf/nan.
_NUMBER_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NUM_ID = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_RE = re.compile(
    rf"v?({_NUM_ID})\.({_NUM_ID})\.({_NUM_ID})(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


@dataclass
class Condition:
    attribute: str
    operator: str
    values: list[str] = field(default_factory=list)


@dataclass
class Rule:
    conditions: list[Condition] = field(default_factory=list)
    variant: str = ""
    priority: int = 0


@dataclass
class FlagConfig:
    key: str
    enabled: bool = True
    percentage: float = 0.0
    rules: list[Rule] = field(default_factory=list)
    variants: dict[str, float] = field(default_factory=dict)
    default_variant: str = ""


@dataclass
class EvalContext:
    user_id: str
    email: str = ""
    plan: str = ""
    country: str = ""
    properties: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.properties = {name: _property_text(value) for name, value in (self.properties or {}).items()}


@dataclass(frozen=True)
class EvalResult:
    enabled: bool
    variant: str
    reason: str


def hash_u32(text: str) -> int:
    """The first four bytes of SHA-256 of the UTF-8 text, as a big-endian unsigned integer."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def bucket(flag_key: str, user_id: str) -> float:
    """The rollout bucket in [0, 100] (SPEC section 2, step 4)."""
    return hash_u32(f"{flag_key}:{user_id}") / _U32_MAX * 100


def _property_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"property values must be str, int, float or bool, not {type(value).__name__}")


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


@dataclass(frozen=True)
class _CompiledCondition:
    attribute: str
    operator: str
    values: tuple[str, ...]
    pattern: re.Pattern[str] | None

    def matches(self, ctx: EvalContext) -> bool:
        name = self.attribute
        v: str = getattr(ctx, name) if name in _BUILTIN_ATTRIBUTES else (ctx.properties or {}).get(name, "")
        op, values = self.operator, self.values
        if op == "in":
            return v in values
        if op == "not_in":
            return v not in values
        if not values:
            return False
        first = values[0]
        if op == "eq":
            return v == first
        if op == "neq":
            return v != first
        if op == "contains":
            return first in v
        if op == "starts_with":
            return v.startswith(first)
        if op == "ends_with":
            return v.endswith(first)
        if op == "matches":
            return self.pattern is not None and self.pattern.search(v) is not None
        if op in _NUMERIC_OPS:
            a, b = _number(v), _number(first)
            return a is not None and b is not None and bool(_NUMERIC_OPS[op](a, b))
        if op in _SEMVER_OPS:
            sa, sb = _semver_key(v), _semver_key(first)
            return sa is not None and sb is not None and bool(_SEMVER_OPS[op](sa, sb))
        return False  # unknown operator: reported as a warning on load


@dataclass(frozen=True)
class _CompiledFlag:
    key: str
    enabled: bool
    percentage: float
    rules: list[tuple[list[_CompiledCondition], str]]  # sorted by priority, highest first
    cumulative: list[tuple[str, float]]  # variants sorted by name, with running weight sums
    total: float
    last_positive: str
    default_variant: str

    def variant(self, user_id: str) -> str:
        if self.total <= 0:
            return self.default_variant
        x = hash_u32(f"{self.key}:variant:{user_id}") / _U32_MAX * self.total
        for name, running in self.cumulative:
            if running > x:
                return name
        return self.last_positive


# --- loading: validation of the wire format (SPEC section 1 and 5) ------------------------------------------------


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -_INF < value < _INF


def _check(ok: bool, where: str, name: str, expected: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{where}: field '{name}' must be {expected}, got {json.dumps(value, default=repr)}")


def _field(obj: dict[str, Any], where: str, name: str, default: Any, expected: str, test: Any) -> Any:
    value = obj.get(name, default)
    _check(test(value), where, name, expected, value)
    return value


def _require(obj: dict[str, Any], where: str, name: str) -> None:
    if name not in obj:
        raise ValueError(f"{where}: missing required field '{name}'")


def _compile_condition(cond: Any, rw: str, c: int, warnings: list[str]) -> _CompiledCondition:
    cw = f"{rw}.conditions[{c}]"
    _check(isinstance(cond, dict), rw, f"conditions[{c}]", "an object", cond)
    for name in ("attribute", "operator"):
        _require(cond, cw, name)
        _check(isinstance(cond[name], str), cw, name, "a string", cond[name])
    values = _field(cond, cw, "values", [], "an array", lambda v: isinstance(v, list))
    for value in values:
        _check(isinstance(value, str) or _is_number(value), cw, "values", "an array of strings/numbers", value)
    text = tuple(v if isinstance(v, str) else str(v) for v in values)  # JSON integers keep their text
    op, pattern = cond["operator"], None
    if op not in _OPERATORS:
        warnings.append(f"{cw}: unknown operator {op!r}; the condition never matches")
    elif op == "matches" and text:
        try:
            pattern = re.compile(text[0])
        except re.error as exc:
            warnings.append(f"{cw}: bad regular expression {text[0]!r} ({exc}); the condition never matches")
    return _CompiledCondition(cond["attribute"], op, text, pattern)


def _compile_flag(raw: Any, index: int, warnings: list[str]) -> _CompiledFlag:
    where = f"flags[{index}]"
    _check(isinstance(raw, dict), "document", where, "an object", raw)
    _require(raw, where, "key")
    key = raw["key"]
    _check(isinstance(key, str) and key != "", where, "key", "a non-empty string", key)
    where = f"flag {key!r} ({where})"
    _require(raw, where, "enabled")
    enabled = _field(raw, where, "enabled", None, "a bool", lambda v: isinstance(v, bool))
    percentage = _field(raw, where, "percentage", 0, "a number", _is_number)
    if not 0 <= percentage <= 100:
        warnings.append(f"{where}: percentage {percentage} is outside [0, 100]; treated as no rollout")
    default_variant = _field(raw, where, "default_variant", "", "a string", _is_str)
    variants = _field(raw, where, "variants", {}, "an object", lambda v: isinstance(v, dict))
    for name, weight in variants.items():
        _check(_is_number(weight) and weight >= 0, where, f"variants.{name}", "a number >= 0", weight)
    raw_rules = _field(raw, where, "rules", [], "an array", lambda v: isinstance(v, list))
    rules: list[tuple[int, list[_CompiledCondition], str]] = []
    for r, rule in enumerate(raw_rules):
        rw = f"{where}: rules[{r}]"
        _check(isinstance(rule, dict), where, f"rules[{r}]", "an object", rule)
        priority = _field(rule, rw, "priority", 0, "an integer", lambda v: type(v) is int)
        variant = _field(rule, rw, "variant", "", "a string", _is_str)
        conditions = _field(rule, rw, "conditions", [], "an array", lambda v: isinstance(v, list))
        compiled = [_compile_condition(cond, rw, c, warnings) for c, cond in enumerate(conditions)]
        rules.append((priority, compiled, variant))
    rules.sort(key=lambda rule: -rule[0])  # stable: equal priorities keep document order
    cumulative, running, last_positive = [], 0.0, ""
    for name in sorted(variants):
        running += variants[name]
        cumulative.append((name, running))
        if variants[name] > 0:
            last_positive = name
    if variants and running == 0:
        warnings.append(f"{where}: variant weights sum to 0; default_variant is used")
    return _CompiledFlag(
        key, enabled, percentage, [(c, v) for _, c, v in rules], cumulative, running, last_positive, default_variant
    )


class FlagEvaluator:
    """Evaluates flags against an immutable-by-convention dict of compiled flags, replaced whole on update."""

    def __init__(self) -> None:
        self._flags: dict[str, _CompiledFlag] = {}
        self.warnings: list[str] = []

    def update(self, flags: Iterable[FlagConfig | dict[str, Any]]) -> None:
        """Replace all flags. Raises ValueError (and keeps the previous flags) if any flag is malformed."""
        compiled: dict[str, _CompiledFlag] = {}
        warnings: list[str] = []
        for index, flag in enumerate(flags):
            raw = asdict(flag) if is_dataclass(flag) and not isinstance(flag, type) else flag
            compiled_flag = _compile_flag(raw, index, warnings)
            if compiled_flag.key in compiled:
                warnings.append(f"flags[{index}]: duplicate key {compiled_flag.key!r} replaces the earlier flag")
            compiled[compiled_flag.key] = compiled_flag
        self._flags, self.warnings = compiled, warnings

    def update_json(self, document: str | bytes) -> None:
        """Replace all flags from a wire-format document: a JSON array of flags or {"flags": [...]}."""
        try:
            text = document.decode() if isinstance(document, bytes) else document
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ValueError(f"invalid JSON: {exc}") from exc
        if isinstance(data, dict):
            _require(data, "document", "flags")
            _check(isinstance(data["flags"], list), "document", "flags", "an array", data["flags"])
            data = data["flags"]
        elif not isinstance(data, list):
            message = 'the document must be an array of flags or an object {"flags": [...]}'
            raise ValueError(f"{message}, got {json.dumps(data)}")
        self.update(data)

    def evaluate(self, key: str, ctx: EvalContext) -> EvalResult:
        flag = self._flags.get(key)
        if flag is None:
            return EvalResult(False, "", "not_found")
        if not flag.enabled:
            return EvalResult(False, "", "disabled")
        for conditions, variant in flag.rules:
            if all(condition.matches(ctx) for condition in conditions):
                return EvalResult(True, variant, "rule_match")
        if 0 < flag.percentage < 100:
            if bucket(flag.key, ctx.user_id) < flag.percentage:
                return EvalResult(True, flag.variant(ctx.user_id), "percentage")
            return EvalResult(False, "", "percentage_excluded")
        return EvalResult(True, flag.variant(ctx.user_id), "default")

    def is_enabled(self, key: str, ctx: EvalContext, default: bool = False) -> bool:
        result = self.evaluate(key, ctx)
        return default if result.reason == "not_found" else result.enabled

    def get_variant(self, key: str, ctx: EvalContext) -> str:
        return self.evaluate(key, ctx).variant


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")
