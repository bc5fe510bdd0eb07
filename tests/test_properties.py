"""Property tests through the Python API (Hypothesis): the invariants of `tests/properties.rs`, plus
the Python-only round trips (`to_dict`/`from_dict`, JSON, pickle) and a differential check against
the pure-Python reference evaluator (`benches/reference_evaluator.py`, an independent implementation
of format 2) on generated format-2 documents: rule percentages and variants, `bucket_by`, segments
(cycles included), prerequisites (cycles and missing keys included), list properties, `before` /
`after` with a frozen `now`, values and `off_variant`. The reference must agree on every answer,
value included, and on the set of warning paths.

The default example counts keep the file to a few seconds; FERROFLAG_HYPOTHESIS_EXAMPLES raises them
for a long run (`benches/reliability.py` does).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
from ferroflag import Condition, ConfigError, EvalContext, EvalResult, FlagConfig, FlagEvaluator, Rule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent


def _load_reference() -> Any:
    spec = importlib.util.spec_from_file_location("reference_evaluator", ROOT / "benches" / "reference_evaluator.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ref = _load_reference()
VECTORS = json.loads((ROOT / "tests" / "fixtures" / "bucketing_vectors.json").read_text())["vectors"]

OPERATORS = [
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "semver_eq",
    "semver_gt",
    "semver_lt",
    "no_such_operator",
]
# Patterns that mean the same in Python's `re` and Rust's `regex` (the two engines differ elsewhere;
# texts below never hold "\n", where Python's `$` and Rust's differ).
PATTERNS = ["^a", "b$", "a.c", "^[a-c]+$", "x|y", "[0-9]+", "", "(", "^user-1", "a{2}"]
INSTANTS = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T01:00:00+01:00",
    "2025-12-31t23:59:59.999999999z",
    "1767225600",
    "1767225600.5",
    "1.7e9",
    "-1",
    "2024-02-29T12:00:00.25-05:30",
    "2024-02-30T00:00:00Z",
    "2024-01-01",
    "soon",
    "",
]
WORDS = [
    "",
    "a",
    "b",
    "abc",
    "enterprise",
    "DE",
    "user-1",
    "1",
    "-2.5",
    "1e3",
    "10",
    "2.3.0",
    "1.0.0-rc.1",
    "v2.4.0",
    "org-1",
    "beta",
    *INSTANTS[:8],
]
ATTRIBUTES = ["user_id", "email", "plan", "country", "beta", "app_version", "org_id", "groups", "now"]
PROPERTY_NAMES = ["beta", "app_version", "org_id", "groups", "now", "signup", "x"]
FLAG_KEYS = ["a", "b", "c", "new-checkout"]
SEGMENT_KEYS = ["s1", "s2", "s3"]
VARIANT_NAMES = ["", "on", "off", "v1", "v2"]

EXAMPLES = int(os.environ.get("FERROFLAG_HYPOTHESIS_EXAMPLES", "60"))
CI_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.one_of(
    st.sampled_from(WORDS), st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n"), max_size=8)
)
# Any text Python can hand to native code: no lone surrogates (those are a clear error, see
# test_hostile_input.py).
clean_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
variant_name = st.one_of(st.sampled_from(VARIANT_NAMES), st.sampled_from(VARIANT_NAMES), text)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), finite, text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)

condition = st.one_of(
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(ATTRIBUTES),
            "operator": st.sampled_from(OPERATORS),
            "values": st.lists(st.one_of(text, st.integers(-1000, 1000)), max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(ATTRIBUTES),
            "operator": st.just("matches"),
            "values": st.lists(st.sampled_from(PATTERNS), max_size=1),
        }
    ),
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(["now", "now", "signup", "groups"]),
            "operator": st.sampled_from(["before", "after"]),
            "values": st.lists(st.sampled_from(INSTANTS), max_size=2),
        }
    ),
    st.fixed_dictionaries(
        {
            "operator": st.sampled_from(["in_segment", "not_in_segment"]),
            "values": st.lists(st.sampled_from([*SEGMENT_KEYS, "ghost"]), max_size=2),
        },
        optional={"attribute": st.sampled_from(ATTRIBUTES)},
    ),
)
percentage = st.one_of(
    st.sampled_from([0, 100, 50, 1e-9, 99.999999, -1, 150]), st.floats(0, 100), st.floats(0, 100), finite
)
weights = st.dictionaries(variant_name, st.one_of(st.sampled_from([0, 1, 2]), st.floats(0, 1000)), max_size=4)
rule = st.fixed_dictionaries(
    {
        "conditions": st.lists(condition, max_size=2),
        "variant": variant_name,
        "priority": st.integers(-(2**63), 2**63 - 1),
    },
    optional={"percentage": percentage, "variants": weights, "name": text},
)
prerequisite = st.fixed_dictionaries(
    {"key": st.sampled_from([*FLAG_KEYS, "missing"])},
    optional={"variants": st.lists(variant_name, max_size=2)},
)
flag = st.fixed_dictionaries(
    {"key": st.sampled_from(FLAG_KEYS), "enabled": st.sampled_from([True, True, True, False])},
    optional={
        "percentage": percentage,
        "bucket_by": st.sampled_from(["user_id", "org_id", "groups", "email", "now", "user_id"]),
        "prerequisites": st.lists(prerequisite, max_size=2),
        "rules": st.lists(rule, max_size=3),
        "variants": weights,
        "default_variant": variant_name,
        "off_variant": variant_name,
        "values": st.dictionaries(variant_name, json_value, max_size=3),
        "metadata": st.dictionaries(text, st.one_of(text, st.integers(-1000, 1000), st.booleans()), max_size=2),
        "unknown_future_field": st.integers(),
        "x-extension": st.integers(),
    },
)
segment = st.fixed_dictionaries(
    {
        "key": st.sampled_from(SEGMENT_KEYS),
        "rules": st.lists(st.fixed_dictionaries({"conditions": st.lists(condition, max_size=2)}), max_size=2),
    }
)
flags_only = st.lists(flag, max_size=5)
document = st.fixed_dictionaries(
    {"format": st.just(2), "flags": st.lists(flag, max_size=5)},
    optional={"segments": st.lists(segment, max_size=3), "metadata": st.dictionaries(text, text, max_size=2)},
)
property_value = st.one_of(
    text, st.integers(), st.booleans(), finite, st.lists(text, max_size=3), st.sampled_from(INSTANTS[:8])
)
context = st.builds(
    EvalContext,
    user_id=st.one_of(text, st.integers(-(10**20), 10**20)),
    email=text,
    plan=text,
    country=text,
    properties=st.dictionaries(st.sampled_from(PROPERTY_NAMES), property_value, max_size=4),
)


def reference_context(ctx: EvalContext) -> Any:
    return ref.EvalContext(ctx.user_id, ctx.email, ctx.plan, ctx.country, dict(ctx.properties))


def typed(value: Any) -> str:
    """A value as canonical JSON: tells 0 from 0.0 from False."""
    return json.dumps(value, sort_keys=True)


def answer(result: Any) -> tuple[bool, str, str, str]:
    return result.enabled, result.variant, result.reason, typed(result.value)


def warning_paths(evaluator: Any) -> set[str]:
    return {w.path for w in evaluator.warnings}


def load(doc: dict[str, Any]) -> FlagEvaluator:
    evaluator = FlagEvaluator()
    evaluator.update_json(json.dumps(doc))
    return evaluator


@CI_SETTINGS
@given(document, st.lists(context, min_size=1, max_size=3))
def test_evaluation_is_deterministic_and_agrees_everywhere(doc: dict[str, Any], contexts: list[EvalContext]):
    evaluator = load(doc)
    again = FlagEvaluator()
    again.update(doc["flags"], segments=doc.get("segments", []), metadata=doc.get("metadata", {}))
    definitions = {f["key"]: f for f in doc["flags"]}  # a later duplicate replaces an earlier one
    for ctx in contexts:
        everything = evaluator.evaluate_all(ctx)
        assert list(everything) == evaluator.keys()
        for key in [*evaluator.keys(), "missing"]:
            result = evaluator.evaluate(key, ctx)
            assert evaluator.evaluate(key, ctx) == result
            assert answer(again.evaluate(key, ctx)) == answer(result)
            assert evaluator.is_enabled(key, ctx) == result.enabled
            assert evaluator.is_enabled_many(key, [ctx, ctx]) == [result.enabled] * 2
            assert evaluator.get_variant(key, ctx) == result.variant
            assert result.enabled == (result.reason in ("rule_match", "percentage", "default"))
            explanation = evaluator.explain(key, ctx)
            if key == "missing":
                assert result == EvalResult(False, "", "not_found")
                assert result.value is None
                assert explanation is None
                assert evaluator.is_enabled(key, ctx, default=True)
                continue
            definition = definitions[key]
            if not result.enabled:
                assert result.variant == (definition.get("off_variant") or "")
            assert typed(result.value) == typed((definition.get("values") or {}).get(result.variant))
            assert everything[key] == result
            assert explanation is not None
            assert (explanation["enabled"], explanation["variant"], explanation["reason"]) == (
                result.enabled,
                result.variant,
                result.reason,
            )
            # The same context as a dict answers the same.
            as_dict = {"user_id": ctx.user_id, "email": ctx.email, "plan": ctx.plan, "country": ctx.country}
            assert evaluator.evaluate(key, {**as_dict, "properties": ctx.properties}) == result


@CI_SETTINGS
@given(document, st.lists(context, min_size=1, max_size=3))
def test_answers_and_warnings_equal_the_reference_evaluator(doc: dict[str, Any], contexts: list[EvalContext]):
    text_ = json.dumps(doc)
    evaluator = FlagEvaluator()
    evaluator.update_json(text_)
    reference = ref.FlagEvaluator()
    reference.update_json(text_)
    assert warning_paths(evaluator) == warning_paths(reference), text_
    assert evaluator.keys() == reference.keys()
    for ctx in contexts:
        for key in [*evaluator.keys(), "missing"]:
            expected = reference.evaluate(key, reference_context(ctx))
            assert answer(evaluator.evaluate(key, ctx)) == answer(expected), (key, ctx)


@CI_SETTINGS
@given(flags_only, st.lists(context, min_size=1, max_size=2))
def test_python_objects_equal_the_reference_evaluator(flags: list[dict[str, Any]], contexts: list[EvalContext]):
    evaluator = FlagEvaluator(flags)
    reference = ref.FlagEvaluator(flags)
    assert warning_paths(evaluator) == warning_paths(reference)
    for ctx in contexts:
        for key in [*evaluator.keys(), "missing"]:
            expected = reference.evaluate(key, reference_context(ctx))
            assert answer(evaluator.evaluate(key, ctx)) == answer(expected), (key, ctx)


@CI_SETTINGS
@given(document)
def test_definitions_round_trip_through_dicts_json_and_pickle(doc: dict[str, Any]):
    evaluator = load(doc)
    configs = evaluator.configs()
    for config in configs:
        as_dict = config.to_dict()
        assert FlagConfig.from_dict(as_dict) == config
        assert FlagConfig.from_dict(json.loads(json.dumps(as_dict))) == config
        assert pickle.loads(pickle.dumps(config)) == config
        assert FlagConfig(**as_dict) == config
        for rule_config in config.rules:
            assert Rule.from_dict(rule_config.to_dict()) == rule_config
            for condition_config in rule_config.conditions:
                assert Condition.from_dict(condition_config.to_dict()) == condition_config
    # A whole document: configs → JSON → evaluator gives the same configs and the same answers.
    reloaded = load({"flags": [c.to_dict() for c in configs], "segments": doc.get("segments", [])})
    assert reloaded.configs() == configs
    whole = load(evaluator.document())
    assert whole.configs() == configs
    for ctx in (EvalContext("user-1", plan="enterprise"), EvalContext("", properties={"groups": ["beta", "x"]})):
        assert reloaded.evaluate_all(ctx) == evaluator.evaluate_all(ctx)
        assert whole.evaluate_all(ctx) == evaluator.evaluate_all(ctx)


@CI_SETTINGS
@given(
    clean_text,
    clean_text,
    clean_text,
    clean_text,
    st.dictionaries(clean_text, st.one_of(clean_text, st.integers(), st.lists(clean_text, max_size=3))),
)
def test_contexts_round_trip_and_hash_by_content(user_id: str, email: str, plan: str, country: str, props: dict):
    ctx = EvalContext(user_id, email, plan, country, props)
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    same = EvalContext(user_id, email, plan, country, dict(reversed(list(props.items()))))
    assert same == ctx
    assert hash(same) == hash(ctx)
    assert ctx.properties == {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in props.items()}
    assert ctx.get("user_id") == user_id


@CI_SETTINGS
@given(document, st.binary(max_size=64))
def test_a_rejected_document_keeps_the_previous_snapshot(doc: dict[str, Any], junk: bytes):
    evaluator = load(doc)
    before = (evaluator.version, evaluator.configs())
    try:
        evaluator.update_json(junk)
    except ConfigError:
        assert (evaluator.version, evaluator.configs()) == before
    else:
        assert evaluator.version == before[0] + 1


@settings(max_examples=min(EXAMPLES, 20), deadline=None)
@given(
    st.floats(0.5, 99.5),
    st.floats(0, 50),
    st.sampled_from(["a", "new-checkout", "ключ"]),
    st.text("abc", max_size=4),
    st.booleans(),
)
def test_enabled_fraction_tracks_the_percentage(p: float, raise_by: float, key: str, salt: str, by_rule: bool):
    users = [EvalContext(f"{salt}user-{i}") for i in range(2000)]

    def flag(q: float) -> dict[str, Any]:
        if by_rule:  # a rule rollout behaves like the flag's: same bucket, same variant hash
            return {"key": key, "enabled": True, "rules": [{"percentage": q, "variants": {"a": 1, "b": 2}}]}
        return {"key": key, "enabled": True, "percentage": q, "variants": {"a": 1, "b": 2}}

    low = FlagEvaluator([flag(p)])
    high = FlagEvaluator([flag(min(p + raise_by, 99.999))])
    enabled = 0
    for ctx in users:
        a = low.evaluate(key, ctx)
        if a.enabled:
            enabled += 1
            # Raising the rollout keeps everyone in it, on the same variant.
            b = high.evaluate(key, ctx)
            assert (b.enabled, b.variant, b.reason) == (True, a.variant, a.reason)
    q = p / 100
    assert abs(enabled / len(users) - q) <= 6 * math.sqrt(q * (1 - q) / len(users)) + 1 / len(users)


@settings(max_examples=min(EXAMPLES, 20), deadline=None)
@given(st.floats(0, 100, exclude_min=True, exclude_max=True))
def test_golden_vectors_decide_the_rollout(p: float):
    for v in VECTORS:
        evaluator = FlagEvaluator([{"key": v["flag_key"], "enabled": True, "percentage": p}])
        result = evaluator.evaluate(v["flag_key"], EvalContext(v["user_id"]))
        # An empty bucketing value is outside every partial rollout.
        admitted = v["bucket"] < p and v["user_id"] != ""
        assert result.reason == ("percentage" if admitted else "percentage_excluded"), v
        explanation = evaluator.explain(v["flag_key"], EvalContext(v["user_id"]))
        assert explanation is not None
        assert explanation["rollout"] is not None
        if v["user_id"] != "":
            assert explanation["rollout"]["bucket"] == v["bucket"]


def test_nan_percentage_is_refused():
    with pytest.raises(ValueError, match="finite"):
        FlagConfig("k", percentage=math.nan)
