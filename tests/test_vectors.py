"""The golden vectors of tests/fixtures, run through the Python API (tests/spec.rs runs them in Rust).

eval_cases.json is format 2 (see tests/fixtures/generate_vectors.py): each document lists the set of JSON paths its
warnings must name, and each case the full answer, value included.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from ferroflag import ConfigError, EvalContext, FlagEvaluator

FIXTURES = Path(__file__).parent / "fixtures"
CASES = json.loads((FIXTURES / "eval_cases.json").read_text())


def _context(data: dict[str, Any]) -> EvalContext:
    return EvalContext(**data)  # list properties arrive as Python lists


def _typed(value: Any) -> str:
    """The value as canonical JSON: tells 0 from 0.0 from False, and {} from []."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("document", CASES["documents"], ids=lambda d: d["name"])
def test_evaluation_cases(document: dict[str, Any]) -> None:
    evaluator = FlagEvaluator()
    evaluator.update_json(json.dumps(document["document"]))
    assert {w.path for w in evaluator.warnings} == set(document["warnings"]), [str(w) for w in evaluator.warnings]
    for case in document["cases"]:
        flag, expected = case["flag"], case["expected"]
        ctx = _context(case["context"])
        result = evaluator.evaluate(flag, ctx)
        want = (expected["enabled"], expected["variant"], expected["reason"], _typed(expected["value"]))
        assert (result.enabled, result.variant, result.reason, _typed(result.value)) == want, (flag, ctx)
        # The same answer through the dict form of the context and through is_enabled.
        assert evaluator.evaluate(flag, case["context"]) == result, (flag, ctx)
        assert evaluator.is_enabled(flag, ctx) is expected["enabled"], (flag, ctx)
        if expected["reason"] == "not_found":
            assert evaluator.is_enabled(flag, ctx, default=True) is True
        if isinstance(result.value, (dict, list)):
            # A returned list or dict is the caller's own.
            result.value.clear()
            assert _typed(evaluator.evaluate(flag, ctx).value) == _typed(expected["value"]), (flag, ctx)


@pytest.mark.parametrize("document", CASES["invalid_documents"], ids=lambda d: d["name"])
def test_invalid_documents(document: dict[str, Any]) -> None:
    evaluator = FlagEvaluator([{"key": "keep-me", "enabled": True}])
    with pytest.raises(ConfigError) as excinfo:
        evaluator.update_json(document["text"])
    for needle in document["error_contains"]:
        assert needle in str(excinfo.value)
    assert evaluator.version == 1
    assert evaluator.evaluate("keep-me", EvalContext("u")).reason == "default"


def test_bucketing_vectors() -> None:
    """Pins each bucket exactly: a rollout at the bucket excludes the user, one a hair above includes them."""
    vectors = json.loads((FIXTURES / "bucketing_vectors.json").read_text())["vectors"]
    checked = 0
    for v in vectors:
        key, user, bucket = v["flag_key"], v["user_id"], v["bucket"]
        if not 0 < bucket < 100:
            continue
        evaluator = FlagEvaluator([{"key": key, "enabled": True, "percentage": bucket}])
        assert evaluator.is_enabled(key, EvalContext(user)) is False, (key, user)
        evaluator.update([{"key": key, "enabled": True, "percentage": math.nextafter(bucket, 100)}])
        assert evaluator.is_enabled(key, EvalContext(user)) is (user != ""), (key, user)
        checked += 1
    assert checked >= 100
