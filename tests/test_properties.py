"""Property tests through the Python API (Hypothesis): the invariants of `tests/properties.rs`, plus
the Python-only round trips (`to_dict`/`from_dict`, JSON, pickle) and a differential check against
the pure-Python reference evaluator (`benches/reference_evaluator.py`, the original design that
SPEC §2 steps 1-5 must match bit for bit).
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
# Patterns that mean the same in Python's `re` and Rust's `regex` (the two engines differ elsewhere).
PATTERNS = ["^a", "b$", "a.c", "^[a-c]+$", "x|y", "[0-9]+", "", "(", "^user-1"]
WORDS = ["", "a", "b", "abc", "enterprise", "DE", "user-1", "1", "-2.5", "1e3", "10", "2.3.0", "1.0.0-rc.1", "v2.4.0"]
ATTRIBUTES = ["user_id", "email", "plan", "country", "beta", "app_version"]

# FERROFLAG_HYPOTHESIS_EXAMPLES raises the count for a long run (`benches/reliability.py` does).
EXAMPLES = int(os.environ.get("FERROFLAG_HYPOTHESIS_EXAMPLES", "150"))
CI_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.one_of(st.sampled_from(WORDS), st.text(max_size=8))
# Any text Python can hand to native code: no lone surrogates (those are a clear error, see
# test_hostile_input.py).
clean_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)

condition = st.one_of(
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(ATTRIBUTES),
            "operator": st.sampled_from(OPERATORS),
            "values": st.lists(text, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(ATTRIBUTES),
            "operator": st.just("matches"),
            "values": st.lists(st.sampled_from(PATTERNS), max_size=1),
        }
    ),
)
rule = st.fixed_dictionaries(
    {
        "conditions": st.lists(condition, max_size=3),
        "variant": text,
        "priority": st.integers(-(2**63), 2**63 - 1),
    }
)
percentage = st.one_of(st.sampled_from([0, 100, 50, 1e-9, 99.999999, -1, 150]), st.floats(0, 100), finite)
weights = st.dictionaries(text, st.one_of(st.sampled_from([0, 1, 2]), st.floats(0, 1000)), max_size=4)
flag = st.fixed_dictionaries(
    {"key": st.sampled_from(["a", "b", "c", "new-checkout"]), "enabled": st.booleans()},
    optional={
        "percentage": percentage,
        "rules": st.lists(rule, max_size=3),
        "variants": weights,
        "default_variant": text,
        "unknown_future_field": st.integers(),
    },
)
document = st.lists(flag, max_size=5)
context = st.builds(
    EvalContext,
    user_id=st.one_of(text, st.integers(-(10**20), 10**20)),
    email=text,
    plan=text,
    country=text,
    properties=st.dictionaries(
        st.sampled_from([*ATTRIBUTES[3:], "x"]), st.one_of(text, st.integers(), st.booleans(), finite), max_size=3
    ),
)


def reference_context(ctx: EvalContext) -> Any:
    return ref.EvalContext(ctx.user_id, ctx.email, ctx.plan, ctx.country, dict(ctx.properties))


@CI_SETTINGS
@given(document, st.lists(context, min_size=1, max_size=3))
def test_evaluation_is_deterministic_and_agrees_everywhere(flags: list[dict[str, Any]], contexts: list[EvalContext]):
    evaluator = FlagEvaluator(flags)
    again = FlagEvaluator()
    again.update_json(json.dumps(flags))
    for ctx in contexts:
        everything = evaluator.evaluate_all(ctx)
        assert list(everything) == evaluator.keys()
        for key in [*evaluator.keys(), "missing"]:
            result = evaluator.evaluate(key, ctx)
            assert evaluator.evaluate(key, ctx) == result
            assert again.evaluate(key, ctx) == result
            assert evaluator.is_enabled(key, ctx) == result.enabled
            assert evaluator.is_enabled_many(key, [ctx, ctx]) == [result.enabled] * 2
            assert evaluator.get_variant(key, ctx) == result.variant
            assert result.enabled == (result.reason in ("rule_match", "percentage", "default"))
            if not result.enabled:
                assert result.variant == ""
            explanation = evaluator.explain(key, ctx)
            if key == "missing":
                assert result == EvalResult(False, "", "not_found")
                assert explanation is None
                assert evaluator.is_enabled(key, ctx, default=True)
            else:
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
def test_answers_equal_the_reference_evaluator(flags: list[dict[str, Any]], contexts: list[EvalContext]):
    evaluator = FlagEvaluator(flags)
    reference = ref.FlagEvaluator()
    reference.update(flags)
    for ctx in contexts:
        for key in [*evaluator.keys(), "missing"]:
            expected = reference.evaluate(key, reference_context(ctx))
            assert evaluator.evaluate(key, ctx) == EvalResult(expected.enabled, expected.variant, expected.reason)


@CI_SETTINGS
@given(document)
def test_definitions_round_trip_through_dicts_json_and_pickle(flags: list[dict[str, Any]]):
    evaluator = FlagEvaluator(flags)
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
    reloaded = FlagEvaluator()
    reloaded.update_json(json.dumps({"flags": [c.to_dict() for c in configs]}))
    assert reloaded.configs() == configs
    ctx = EvalContext("user-1", plan="enterprise")
    assert reloaded.evaluate_all(ctx) == evaluator.evaluate_all(ctx)


@CI_SETTINGS
@given(
    clean_text, clean_text, clean_text, clean_text, st.dictionaries(clean_text, st.one_of(clean_text, st.integers()))
)
def test_contexts_round_trip_and_hash_by_content(user_id: str, email: str, plan: str, country: str, props: dict):
    ctx = EvalContext(user_id, email, plan, country, props)
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    same = EvalContext(user_id, email, plan, country, dict(reversed(list(props.items()))))
    assert same == ctx
    assert hash(same) == hash(ctx)
    assert ctx.properties == {k: str(v) for k, v in props.items()}
    assert ctx.get("user_id") == user_id


@CI_SETTINGS
@given(st.lists(flag, min_size=1, max_size=3), st.binary(max_size=64))
def test_a_rejected_document_keeps_the_previous_snapshot(flags: list[dict[str, Any]], junk: bytes):
    evaluator = FlagEvaluator(flags)
    before = (evaluator.version, evaluator.configs())
    try:
        evaluator.update_json(junk)
    except ConfigError:
        assert (evaluator.version, evaluator.configs()) == before
    else:
        assert evaluator.version == before[0] + 1


@settings(max_examples=40, deadline=None)
@given(
    st.floats(0.5, 99.5), st.floats(0, 50), st.sampled_from(["a", "new-checkout", "ключ"]), st.text("abc", max_size=4)
)
def test_enabled_fraction_tracks_the_percentage(p: float, raise_by: float, key: str, salt: str):
    users = [EvalContext(f"{salt}user-{i}") for i in range(3000)]
    low = FlagEvaluator([{"key": key, "enabled": True, "percentage": p, "variants": {"a": 1, "b": 2}}])
    high = FlagEvaluator(
        [{"key": key, "enabled": True, "percentage": min(p + raise_by, 99.999), "variants": {"a": 1, "b": 2}}]
    )
    enabled = 0
    for ctx in users:
        a = low.evaluate(key, ctx)
        if a.enabled:
            enabled += 1
            # Raising the rollout keeps everyone in it, on the same variant.
            assert high.evaluate(key, ctx) == EvalResult(True, a.variant, "percentage")
    q = p / 100
    assert abs(enabled / len(users) - q) <= 6 * math.sqrt(q * (1 - q) / len(users)) + 1 / len(users)


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 100, exclude_min=True, exclude_max=True))
def test_golden_vectors_decide_the_rollout(p: float):
    for v in VECTORS:
        evaluator = FlagEvaluator([{"key": v["flag_key"], "enabled": True, "percentage": p}])
        result = evaluator.evaluate(v["flag_key"], EvalContext(v["user_id"]))
        assert result.reason == ("percentage" if v["bucket"] < p else "percentage_excluded"), v
        explanation = evaluator.explain(v["flag_key"], EvalContext(v["user_id"]))
        assert explanation is not None
        assert explanation["rollout"] is not None
        assert explanation["rollout"]["bucket"] == v["bucket"]


def test_nan_percentage_is_refused():
    with pytest.raises(ValueError, match="finite"):
        FlagConfig("k", percentage=math.nan)
