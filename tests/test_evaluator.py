"""FlagEvaluator: loading (update, update_json, load_file), evaluation (docs/spec.md §2-§5), warnings and
rejected documents (docs/spec.md §6)."""

from __future__ import annotations

import errno
import hashlib
import json
import math
from collections import Counter

import pytest
from ferroflag import (
    Condition,
    ConfigError,
    ConfigWarning,
    EvalContext,
    EvalResult,
    FerroflagError,
    FlagConfig,
    FlagEvaluator,
    Rule,
)

ENTERPRISE = {"attribute": "plan", "operator": "in", "values": ["enterprise"]}

# One flag per reason; keys deliberately not in sorted order, so document order is visible.
DOCUMENT = [
    {"key": "zeta-on", "enabled": True, "default_variant": "dv"},
    {"key": "alpha-off", "enabled": False, "rules": [{"conditions": [], "variant": "never"}]},
    {"key": "mid-rollout", "enabled": True, "percentage": 50, "variants": {"a": 1, "b": 1}},
    {
        "key": "beta-targeted",
        "enabled": True,
        "rules": [{"conditions": [ENTERPRISE], "variant": "ent"}],
    },
]
KEYS = ["zeta-on", "alpha-off", "mid-rollout", "beta-targeted"]


def u32(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def rollout_bucket(flag_key: str, user_id: str) -> float:
    """docs/spec.md §2 step 5 and §2.1, written out."""
    return u32(f"{flag_key}:{user_id}") / 0xFFFFFFFF * 100


def variant_pick(flag_key: str, user_id: str, weights: dict[str, float]) -> str:
    """docs/spec.md §2 step 6 and §2.1, written out."""
    items = sorted(weights.items())
    total = 0.0
    for _, weight in items:
        total += weight
    x = u32(f"{flag_key}:variant:{user_id}") / 0xFFFFFFFF * total
    running = 0.0
    for name, weight in items:
        running += weight
        if running > x:
            return name
    return [name for name, weight in items if weight > 0][-1]


def snapshot_answers(evaluator: FlagEvaluator, contexts) -> list[dict[str, EvalResult]]:
    return [evaluator.evaluate_all(ctx) for ctx in contexts]


@pytest.fixture
def loaded():
    """An evaluator holding DOCUMENT (version 1); not the same object as `evaluator`."""
    return FlagEvaluator(DOCUMENT)


SAMPLE_CONTEXTS = [EvalContext(f"user-{i}", plan=plan) for i in range(50) for plan in ("enterprise", "free")]


# --- loading -----------------------------------------------------------------------------------


def test_update_with_flag_config_objects(evaluator):
    evaluator.update(
        [
            FlagConfig(key="on", enabled=True, default_variant="dv"),
            FlagConfig(key="off", enabled=False),
            FlagConfig(
                key="targeted",
                rules=[Rule(conditions=[Condition("plan", "in", ["enterprise"])], variant="ent", priority=1)],
            ),
        ]
    )
    ctx = EvalContext("u", plan="enterprise")
    assert evaluator.keys() == ["on", "off", "targeted"]
    assert evaluator.evaluate("on", ctx) == EvalResult(True, "dv", "default")
    assert evaluator.evaluate("off", ctx) == EvalResult(False, "", "disabled")
    assert evaluator.evaluate("targeted", ctx) == EvalResult(True, "ent", "rule_match")


def test_update_with_dicts_answers_like_flag_configs(evaluator, users):
    objects = FlagEvaluator([FlagConfig.from_dict(flag) for flag in DOCUMENT])
    evaluator.update(DOCUMENT)
    contexts = [*users[:500], *SAMPLE_CONTEXTS]
    assert snapshot_answers(evaluator, contexts) == snapshot_answers(objects, contexts)


def test_update_with_dicts_holding_rule_and_condition_objects(evaluator):
    evaluator.update(
        [
            {
                "key": "mixed",
                "enabled": True,
                "rules": [
                    Rule(conditions=[Condition("plan", "eq", ["pro"])], variant="from-rule-object"),
                    {"conditions": [Condition("country", "in", ["NL"])], "variant": "from-condition-object"},
                ],
            }
        ]
    )
    assert evaluator.evaluate("mixed", EvalContext("u", plan="pro")) == EvalResult(
        True, "from-rule-object", "rule_match"
    )
    assert evaluator.evaluate("mixed", EvalContext("u", country="NL")) == EvalResult(
        True, "from-condition-object", "rule_match"
    )
    # A flag with rules and no rollout serves only their matches (docs/spec.md §2 step 5).
    assert evaluator.evaluate("mixed", EvalContext("u")) == EvalResult(False, "", "no_match")
    assert evaluator.get_config("mixed").rules[1].conditions == [Condition("country", "in", ["NL"])]


def test_update_accepts_any_iterable_and_an_empty_one(evaluator):
    evaluator.update(flag for flag in DOCUMENT)
    assert evaluator.keys() == KEYS
    evaluator.update(tuple(DOCUMENT[:1]))
    assert evaluator.keys() == ["zeta-on"]
    evaluator.update([])
    assert evaluator.keys() == []
    assert evaluator.evaluate("zeta-on", EvalContext("u")) == EvalResult(False, "", "not_found")


def test_constructor_loads_flags(users):
    evaluator = FlagEvaluator(DOCUMENT)
    assert evaluator.keys() == KEYS
    assert evaluator.version == 1


@pytest.mark.parametrize("kind", ["str", "bytes", "bytearray"])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_update_json_forms(evaluator, loaded, kind, shape):
    body = DOCUMENT if shape == "array" else {"flags": DOCUMENT, "version": 7, "generated_at": "now"}
    text = json.dumps(body)
    document = {"str": text, "bytes": text.encode(), "bytearray": bytearray(text.encode())}[kind]
    evaluator.update_json(document)
    assert evaluator.keys() == KEYS
    # Unknown members of the document object load with a warning at their bare name (docs/spec.md §1, §6).
    expected = [] if shape == "array" else [(None, "version"), (None, "generated_at")]
    assert sorted((w.flag, w.path) for w in evaluator.warnings) == sorted(expected)
    assert snapshot_answers(evaluator, SAMPLE_CONTEXTS) == snapshot_answers(loaded, SAMPLE_CONTEXTS)


def test_update_json_unknown_fields_warn_at_their_path_and_are_otherwise_ignored(evaluator):
    # docs/spec.md §1 "Unknown fields and extension fields", §6: an unknown field loads with a warning
    # at its own path (with the field meant, when one is close) and changes no answer.
    document = {
        "format": 2,
        "colour": "blue",
        "flags": [
            {
                "key": "k",
                "enabled": True,
                "owner": "team-x",
                "percentge": 50,
                "rules": [
                    {
                        "conditions": [{**ENTERPRISE, "comment": "big ones", "atribute": "plan"}],
                        "variant": "ent",
                        "note": "x",
                        "priorty": 3,
                    }
                ],
                "prerequisites": [{"key": "other", "varients": ["on"]}],
            },
            {"key": "other", "enabled": True, "default_variant": "on"},
        ],
    }
    evaluator.update_json(json.dumps(document))
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise")) == EvalResult(True, "ent", "rule_match")
    # "percentge" is not read as "percentage": the flag has rules and no rollout.
    assert evaluator.evaluate("k", EvalContext("u", plan="free")) == EvalResult(False, "", "no_match")
    assert evaluator.get_config("k").percentage == 0
    warnings = {w.path: (w.flag, w.message) for w in evaluator.warnings}
    assert warnings == {
        "colour": (None, "unknown field"),
        "flags[0].owner": ("k", "unknown field"),
        "flags[0].percentge": ("k", 'unknown field; did you mean "percentage"?'),
        "flags[0].rules[0].conditions[0].comment": ("k", "unknown field"),
        "flags[0].rules[0].conditions[0].atribute": ("k", 'unknown field; did you mean "attribute"?'),
        "flags[0].rules[0].note": ("k", 'unknown field; did you mean "name"?'),
        "flags[0].rules[0].priorty": ("k", 'unknown field; did you mean "priority"?'),
        "flags[0].prerequisites[0].varients": ("k", 'unknown field; did you mean "variants"?'),
    }
    assert len(evaluator.warnings) == len(warnings)
    assert str(next(w for w in evaluator.warnings if w.path == "flags[0].percentge")) == (
        'flag "k", field "percentge": unknown field; did you mean "percentage"?'
    )


def test_update_json_extension_fields_load_silently(evaluator):
    # Names that start with "x-" (lowercase, as written) are extension fields: ignored without a warning.
    segment = {"key": "staff", "x-source": "hr", "rules": [{"x-why": "emails", "conditions": [ENTERPRISE]}]}
    flag = {
        "key": "k",
        "enabled": True,
        "x-owner-team": {"name": "payments", "nested": [1, 2, {"deep": True}]},
        "x-": "",
        "rules": [
            {
                "x-ticket": "PAY-311",
                "conditions": [{**ENTERPRISE, "x-comment": "big ones"}],
                "variant": "ent",
            }
        ],
    }
    document = {"format": 2, "x-generated-by": "flag-admin 4.2", "segments": [segment], "flags": [flag]}
    evaluator.update_json(json.dumps(document))
    assert evaluator.warnings == []
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise")) == EvalResult(True, "ent", "rule_match")
    assert evaluator.evaluate("k", EvalContext("u", plan="free")) == EvalResult(False, "", "no_match")
    # Only lowercase "x-" marks an extension: "X-Owner" is an unknown field like any other.
    evaluator.update_json(json.dumps([{"key": "k", "enabled": True, "X-Owner": "payments", "x_owner": "p"}]))
    assert sorted(w.path for w in evaluator.warnings) == ["flags[0].X-Owner", "flags[0].x_owner"]


def test_update_unknown_fields_in_dicts_warn_like_json(evaluator):
    # Every route applies the same rules (docs/spec.md §6): dicts given to update() warn the same way.
    flags = [{"key": "k", "enabled": True, "percentge": 50, "x-owner": "me", "rules": [{"variant": "a", "nmae": ""}]}]
    evaluator.update(flags)
    from_dicts = [(w.flag, w.path, w.message) for w in evaluator.warnings]
    evaluator.update_json(json.dumps(flags))
    assert [(w.flag, w.path, w.message) for w in evaluator.warnings] == from_dicts
    assert sorted(path for _, path, _ in from_dicts) == ["flags[0].percentge", "flags[0].rules[0].nmae"]


def test_update_json_null_fields_mean_defaults(evaluator):
    evaluator.update_json(
        '[{"key": "k", "enabled": true, "percentage": null, "rules": null, "variants": null, "default_variant": null}]'
    )
    assert evaluator.get_config("k") == FlagConfig("k")


def test_update_json_numbers_in_condition_values_keep_their_json_text(evaluator):
    values = "[3, 1.50, -0, 1.0e-05, 100000000000000000000000000001]"
    condition = f'{{"attribute": "n", "operator": "in", "values": {values}}}'
    evaluator.update_json(
        f'[{{"key": "k", "enabled": true, "rules": [{{"conditions": [{condition}], "variant": "hit"}}]}}]'
    )
    assert evaluator.get_config("k").rules[0].conditions[0].values == [
        "3",
        "1.50",
        "-0",
        "1.0e-05",
        "100000000000000000000000000001",
    ]
    assert evaluator.evaluate("k", EvalContext("u", properties={"n": "1.50"})).reason == "rule_match"
    assert evaluator.evaluate("k", EvalContext("u", properties={"n": 3})).reason == "rule_match"
    assert evaluator.evaluate("k", EvalContext("u", properties={"n": 1.5})).reason == "no_match"  # "1.5" != "1.50"


@pytest.mark.parametrize("as_path", [False, True])
def test_load_file(evaluator, loaded, tmp_path, as_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": DOCUMENT}))
    evaluator.load_file(path if as_path else str(path))
    assert evaluator.keys() == KEYS
    assert evaluator.version == 1
    assert snapshot_answers(evaluator, SAMPLE_CONTEXTS) == snapshot_answers(loaded, SAMPLE_CONTEXTS)


def test_load_file_missing_keeps_previous_flags(loaded, tmp_path):
    before = snapshot_answers(loaded, SAMPLE_CONTEXTS)
    missing = tmp_path / "nope" / "flags.json"
    with pytest.raises(FileNotFoundError) as excinfo:
        loaded.load_file(missing)
    assert excinfo.value.filename == str(missing)
    assert str(missing) in str(excinfo.value)
    assert excinfo.value.errno == errno.ENOENT
    assert "os error" not in str(excinfo.value)  # Python already shows the errno; no Rust suffix
    assert loaded.version == 1
    assert snapshot_answers(loaded, SAMPLE_CONTEXTS) == before


def test_load_file_directory_and_bad_content(loaded, tmp_path):
    with pytest.raises(IsADirectoryError):
        loaded.load_file(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"key": "k", "enabled": "yes"}]')
    with pytest.raises(ConfigError) as excinfo:
        loaded.load_file(bad)
    assert (excinfo.value.flag, excinfo.value.path) == ("k", "flags[0].enabled")
    assert loaded.keys() == KEYS
    assert loaded.version == 1


# --- evaluation API --------------------------------------------------------------------------


def test_evaluate_every_reason(loaded, users):
    enterprise = EvalContext("user-1", plan="enterprise")
    assert loaded.evaluate("missing", enterprise) == EvalResult(False, "", "not_found")
    assert loaded.evaluate("alpha-off", enterprise) == EvalResult(False, "", "disabled")
    assert loaded.evaluate("beta-targeted", enterprise) == EvalResult(True, "ent", "rule_match")
    # Rules and no rollout: a context no rule takes is off (docs/spec.md §2 step 5).
    assert loaded.evaluate("beta-targeted", EvalContext("user-1")) == EvalResult(False, "", "no_match")
    assert loaded.evaluate("zeta-on", enterprise) == EvalResult(True, "dv", "default")
    rollout = {loaded.evaluate("mid-rollout", ctx) for ctx in users[:200]}
    assert {r.reason for r in rollout} == {"percentage", "percentage_excluded"}
    assert {(r.enabled, r.variant) for r in rollout} == {(True, "a"), (True, "b"), (False, "")}
    # A prerequisite that is off, or answers with another variant, turns the flag off (§2 step 3).
    loaded.update(
        [
            *DOCUMENT,
            {"key": "needs-alpha", "enabled": True, "prerequisites": [{"key": "alpha-off"}], "default_variant": "x"},
            {"key": "needs-zeta-dv", "enabled": True, "prerequisites": [{"key": "zeta-on", "variants": ["dv"]}]},
            {"key": "needs-zeta-v2", "enabled": True, "prerequisites": [{"key": "zeta-on", "variants": ["v2"]}]},
        ]
    )
    assert loaded.evaluate("needs-alpha", enterprise) == EvalResult(False, "", "prerequisite_failed")
    assert loaded.evaluate("needs-zeta-dv", enterprise) == EvalResult(True, "", "default")
    assert loaded.evaluate("needs-zeta-v2", enterprise) == EvalResult(False, "", "prerequisite_failed")


@pytest.mark.parametrize("percentage", [37.5, 50, 0.001, 1e-9, 100 / 3, 66.7, 99.999, 99.99999999])
def test_rollout_follows_the_spec_formula_exactly(evaluator, user_ids, percentage):
    evaluator.update([{"key": "exact", "enabled": True, "percentage": percentage}])
    for user_id in user_ids[:3_000]:
        inside = rollout_bucket("exact", user_id) < percentage
        expected = EvalResult(True, "", "percentage") if inside else EvalResult(False, "", "percentage_excluded")
        assert evaluator.evaluate("exact", EvalContext(user_id)) == expected, user_id


def test_rollout_boundary_is_strictly_below(evaluator, user_ids):
    # A user whose bucket equals the percentage is out; the next double up lets them in.
    for user_id in user_ids[:50]:
        bucket = rollout_bucket("edge", user_id)
        if not 0 < bucket < 100:
            continue
        evaluator.update([{"key": "edge", "enabled": True, "percentage": bucket}])
        assert evaluator.is_enabled("edge", EvalContext(user_id)) is False, user_id
        evaluator.update([{"key": "edge", "enabled": True, "percentage": math.nextafter(bucket, 100)}])
        assert evaluator.is_enabled("edge", EvalContext(user_id)) is True, user_id


@pytest.mark.parametrize(
    "weights",
    [
        {"red": 2.5, "blue": 1, "green": 0, "amber": 3},
        {"a": 0.1, "b": 0.2, "c": 0.3},
        {"only": 1},
        {"x": 1e-9, "y": 1e9},
        {"z": 0, "a": 1, "m": 0},
    ],
    ids=str,
)
def test_variant_pick_follows_the_spec_formula_exactly(evaluator, user_ids, weights):
    evaluator.update([{"key": "colour", "enabled": True, "variants": weights}])
    for user_id in user_ids[:3_000]:
        assert evaluator.get_variant("colour", EvalContext(user_id)) == variant_pick("colour", user_id, weights)


def test_is_enabled_default_applies_only_to_unknown_flags(loaded, users):
    ctx = EvalContext("user-1")
    assert loaded.is_enabled("missing", ctx) is False
    assert loaded.is_enabled("missing", ctx, default=True) is True
    assert loaded.is_enabled("missing", ctx, default=False) is False
    assert loaded.is_enabled("alpha-off", ctx, default=True) is False
    assert loaded.is_enabled("beta-targeted", ctx, default=True) is False  # no_match
    assert loaded.is_enabled("zeta-on", ctx, default=False) is True
    for user in users[:300]:
        assert loaded.is_enabled("mid-rollout", user, default=True) is loaded.evaluate("mid-rollout", user).enabled


def test_get_variant(loaded):
    assert loaded.get_variant("zeta-on", EvalContext("u")) == "dv"
    assert loaded.get_variant("beta-targeted", EvalContext("u", plan="enterprise")) == "ent"
    assert loaded.get_variant("alpha-off", EvalContext("u")) == ""
    assert loaded.get_variant("missing", EvalContext("u")) == ""


def test_evaluate_all_in_document_order_with_every_reason(loaded, users):
    seen = set()
    for ctx in [*users[:100], *SAMPLE_CONTEXTS]:
        results = loaded.evaluate_all(ctx)
        assert list(results) == KEYS
        assert results == {key: loaded.evaluate(key, ctx) for key in KEYS}
        seen.update(r.reason for r in results.values())
    assert seen == {"disabled", "rule_match", "percentage", "percentage_excluded", "no_match", "default"}


def test_evaluate_all_on_an_empty_evaluator(evaluator):
    assert evaluator.evaluate_all(EvalContext("u")) == {}


def test_is_enabled_many_matches_is_enabled(loaded, users):
    contexts = [*users[:300], *SAMPLE_CONTEXTS, {"user_id": "user-7", "plan": "enterprise"}, {"user_id": "user-8"}]
    for key in [*KEYS, "missing"]:
        expected = [loaded.is_enabled(key, ctx) for ctx in contexts]
        assert loaded.is_enabled_many(key, contexts) == expected
        assert loaded.is_enabled_many(key, iter(contexts)) == expected
    assert loaded.is_enabled_many("missing", contexts[:5], default=True) == [True] * 5
    assert loaded.is_enabled_many("alpha-off", contexts[:5], default=True) == [False] * 5
    assert loaded.is_enabled_many("zeta-on", []) == []
    rollout = loaded.is_enabled_many("mid-rollout", users)
    assert 4_800 <= sum(rollout) <= 5_200


def test_dict_contexts_answer_like_eval_contexts(loaded, users):
    loaded.update(
        [
            *DOCUMENT,
            {
                "key": "props",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "tier", "operator": "eq", "values": ["gold"]}], "variant": "gold"},
                    {
                        "conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@x.io"]}],
                        "variant": "x",
                    },
                    {"conditions": [{"attribute": "country", "operator": "in", "values": ["NL"]}], "variant": "nl"},
                ],
            },
        ]
    )
    fields = [
        {},
        {"plan": "enterprise"},
        {"email": "a@x.io"},
        {"country": "NL"},
        {"properties": {"tier": "gold"}},
        {"properties": None},
        {"plan": "free", "properties": {"tier": "silver", "age": 3}},
    ]
    for user in users[:200]:
        for extra in fields:
            as_dict = {"user_id": user.user_id, **extra}
            ctx = EvalContext(**as_dict)
            assert loaded.evaluate_all(as_dict) == loaded.evaluate_all(ctx)
            assert loaded.is_enabled("props", as_dict) is loaded.is_enabled("props", ctx)
            assert loaded.get_variant("props", as_dict) == loaded.get_variant("props", ctx)
    # A dict without user_id is the context with user_id "".
    assert loaded.evaluate_all({}) == loaded.evaluate_all(EvalContext(""))


def test_numbers_and_bools_in_properties_are_matched_as_text(evaluator):
    def rule(attribute, operator, value, variant):
        return {"conditions": [{"attribute": attribute, "operator": operator, "values": [value]}], "variant": variant}

    evaluator.update(
        [
            {"key": "age", "enabled": True, "rules": [rule("age", "eq", "30", "hit")]},
            {"key": "beta", "enabled": True, "rules": [rule("beta", "eq", "true", "hit")]},
            {"key": "off", "enabled": True, "rules": [rule("off", "eq", "false", "hit")]},
            {"key": "score", "enabled": True, "rules": [rule("score", "eq", "1.5", "hit")]},
            {"key": "adult", "enabled": True, "rules": [rule("age", "gte", 18, "hit")]},
            {"key": "uid", "enabled": True, "rules": [rule("user_id", "eq", "42", "hit")]},
        ]
    )
    ctx = EvalContext(42, properties={"age": 30, "beta": True, "off": False, "score": 1.5})
    as_dict = {"user_id": 42, "properties": {"age": 30, "beta": True, "off": False, "score": 1.5}}
    for key in ("age", "beta", "off", "score", "adult", "uid"):
        assert evaluator.evaluate(key, ctx) == EvalResult(True, "hit", "rule_match"), key
        assert evaluator.evaluate(key, as_dict) == EvalResult(True, "hit", "rule_match"), key
    # "True" (Python's str) is not the stored text.
    evaluator.update([{"key": "k", "enabled": True, "rules": [rule("beta", "eq", "True", "hit")]}])
    assert evaluator.evaluate("k", ctx).reason == "no_match"


# --- operators (docs/spec.md §5) -----------------------------------------------------------------------

LARGE = [f"v{i}" for i in range(20)]  # longer lists take another lookup path

OPERATOR_CASES = [
    # eq / neq: compare with values[0] only; empty values never match
    ("eq", ["a"], "a", True),
    ("eq", ["a"], "A", False),
    ("eq", ["a", "b"], "b", False),
    ("eq", [], "", False),
    ("eq", [""], "", True),
    ("neq", ["a"], "b", True),
    ("neq", ["a"], "a", False),
    ("neq", [], "x", False),
    ("neq", ["a", "b"], "b", True),
    # in / not_in
    ("in", ["a", "b"], "b", True),
    ("in", ["a", "b"], "c", False),
    ("in", [], "", False),
    ("in", [""], "", True),
    ("in", LARGE, "v17", True),
    ("in", LARGE, "v20", False),
    ("not_in", ["a", "b"], "c", True),
    ("not_in", ["a", "b"], "a", False),
    ("not_in", [], "anything", True),
    ("not_in", [], "", True),
    ("not_in", LARGE, "v3", False),
    ("not_in", LARGE, "w3", True),
    # substring operators: case-sensitive, values[0] only
    ("contains", ["ell"], "hello", True),
    ("contains", ["ELL"], "hello", False),
    ("contains", ["xyz", "ell"], "hello", False),
    ("contains", [], "hello", False),
    ("contains", [""], "hello", True),
    ("starts_with", ["he"], "hello", True),
    ("starts_with", ["lo"], "hello", False),
    ("starts_with", [], "hello", False),
    ("ends_with", ["lo"], "hello", True),
    ("ends_with", ["he"], "hello", False),
    ("ends_with", [], "hello", False),
    # numbers: both sides must be finite decimal numbers; compared numerically
    ("gt", ["10"], "11", True),
    ("gt", ["10"], "10", False),
    ("gt", ["10"], "9", False),
    ("gt", ["10"], "100", True),
    ("gt", ["1e3"], "1001", True),
    ("gt", ["-1"], "-0.5", True),
    ("gt", ["0"], ".5", True),
    ("gt", ["10"], "abc", False),
    ("gt", ["abc"], "11", False),
    ("gt", [], "11", False),
    ("gt", ["10"], "", False),
    ("gt", ["10"], "inf", False),
    ("gt", ["10"], "Infinity", False),
    ("gt", ["10"], "nan", False),
    ("gt", ["10"], "1e999", False),
    ("gt", ["10"], " 11", False),
    ("gt", ["10"], "1_000", False),
    ("gt", ["10"], "0x10", False),
    ("gte", ["10"], "10", True),
    ("gte", ["10"], "10.0", True),
    ("gte", ["10"], "9.99", False),
    ("gte", ["10"], "", False),
    ("lt", ["10"], "9", True),
    ("lt", ["10"], "10", False),
    ("lt", ["10"], "-inf", False),
    ("lt", ["10"], "-1e3", True),
    ("lte", ["10"], "10", True),
    ("lte", ["10"], "10.5", False),
    ("lte", ["nan"], "1", False),
    # matches: Rust regex syntax, searches (not a full match); a bad pattern never matches
    ("matches", [r"^user-\d+$"], "user-42", True),
    ("matches", [r"^user-\d+$"], "user-x", False),
    ("matches", ["ell"], "hello", True),
    ("matches", ["(?i)HELLO"], "hello", True),
    ("matches", [], "hello", False),
    ("matches", ["["], "[", False),
    ("matches", ["(?<=a)b"], "ab", False),  # look-behind is not Rust regex syntax
    # semver: SemVer 2.0.0 precedence, one optional leading "v", build metadata ignored
    ("semver_eq", ["1.2.3"], "1.2.3", True),
    ("semver_eq", ["1.2.3"], "v1.2.3", True),
    ("semver_eq", ["v1.2.3"], "1.2.3", True),
    ("semver_eq", ["1.2.3"], "1.2.3+build.5", True),
    ("semver_eq", ["1.2.3"], "1.2.3-rc.1", False),
    ("semver_eq", ["1.2"], "1.2", False),
    ("semver_eq", ["1.2.3"], "V1.2.3", False),
    ("semver_eq", ["1.2.3"], "vv1.2.3", False),
    ("semver_eq", [], "1.2.3", False),
    ("semver_gt", ["1.2.3"], "1.10.0", True),
    ("semver_gt", ["1.2.3"], "1.2.3", False),
    ("semver_gt", ["1.2.3-rc.1"], "1.2.3", True),
    ("semver_gt", ["1.2.3"], "1.2.3-rc.1", False),
    ("semver_gt", ["1.0.0-alpha"], "1.0.0-alpha.1", True),
    ("semver_gt", ["1.0.0-rc.9"], "1.0.0-rc.10", True),
    ("semver_gt", ["1.0.0-alpha.beta"], "1.0.0-beta", True),
    ("semver_gt", ["1.0.0-beta.11"], "1.0.0-rc.1", True),
    ("semver_gt", ["1.2.3"], "garbage", False),
    ("semver_gt", ["1.2.3"], "01.2.3", False),
    ("semver_gt", ["1.2.3"], "2.0.0-01", False),  # leading zero in a numeric pre-release identifier
    ("semver_gt", ["garbage"], "2.0.0", False),
    ("semver_gt", ["18446744073709551615.0.0"], "18446744073709551616.0.0", True),  # beyond u64: still SemVer
    ("semver_eq", ["99999999999999999999.0.0"], "v99999999999999999999.0.0+b.01", True),
    ("semver_eq", ["1.2.3"], "1.2.3+", False),
    ("semver_eq", ["1.2.3"], "1.2.3-", False),
    ("semver_eq", ["1.2.3"], "1.2.3.4", False),
    ("semver_lt", ["2.0.0"], "1.9.9", True),
    ("semver_lt", ["1.0.0"], "1.0.0-alpha", True),
    ("semver_lt", ["1.0.0"], "1.0.0+build", False),
    ("semver_lt", ["1.0.0"], "", False),
    # unknown operators (names are case-sensitive) never match
    ("bogus", ["a"], "a", False),
    ("EQ", ["a"], "a", False),
    ("", [], "", False),
]


@pytest.mark.parametrize(("operator", "values", "value", "matches"), OPERATOR_CASES)
def test_operator(evaluator, operator, values, value, matches):
    rule = {"conditions": [{"attribute": "v", "operator": operator, "values": values}], "variant": "hit"}
    evaluator.update([{"key": "k", "enabled": True, "rules": [rule]}])
    expected = EvalResult(True, "hit", "rule_match") if matches else EvalResult(False, "", "no_match")
    assert evaluator.evaluate("k", EvalContext("u", properties={"v": value})) == expected
    # The same through a condition on a field rather than a property.
    rule["conditions"][0]["attribute"] = "email"
    evaluator.update([{"key": "k", "enabled": True, "rules": [rule]}])
    assert evaluator.evaluate("k", EvalContext("u", email=value)) == expected


def test_attribute_lookup(evaluator):
    def flag(attribute, value):
        condition = {"attribute": attribute, "operator": "eq", "values": [value]}
        return {
            "key": f"{attribute}={value}",
            "enabled": True,
            "rules": [{"conditions": [condition], "variant": "hit"}],
        }

    evaluator.update(
        [
            flag("user_id", "u1"),
            flag("email", "a@b.c"),
            flag("plan", "pro"),
            flag("country", "NL"),
            flag("tier", "gold"),
            flag("missing", ""),
        ]
    )
    # Fields win over properties of the same name; a missing property reads as "".
    ctx = EvalContext("u1", email="a@b.c", plan="pro", country="NL", properties={"tier": "gold", "plan": "free"})
    assert {key: r.reason for key, r in evaluator.evaluate_all(ctx).items()} == {
        "user_id=u1": "rule_match",
        "email=a@b.c": "rule_match",
        "plan=pro": "rule_match",
        "country=NL": "rule_match",
        "tier=gold": "rule_match",
        "missing=": "rule_match",
    }
    empty = EvalContext("other", properties={"missing": "now-present"})
    assert {r.reason for r in evaluator.evaluate_all(empty).values()} == {"no_match"}


def test_all_conditions_of_a_rule_must_match(evaluator):
    conditions = [ENTERPRISE, {"attribute": "country", "operator": "in", "values": ["NL"]}]
    evaluator.update([{"key": "k", "enabled": True, "rules": [{"conditions": conditions, "variant": "both"}]}])
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise", country="NL")).reason == "rule_match"
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise", country="DE")).reason == "no_match"
    assert evaluator.evaluate("k", EvalContext("u", plan="free", country="NL")).reason == "no_match"


def test_rule_with_no_conditions_matches_everyone(evaluator, users):
    evaluator.update([{"key": "k", "enabled": True, "percentage": 10, "rules": [{"variant": "all"}]}])
    assert {evaluator.evaluate("k", u) for u in users[:200]} == {EvalResult(True, "all", "rule_match")}


# --- rules, rollouts, variants (docs/spec.md §2) -------------------------------------------------------


def test_higher_priority_first_and_ties_keep_document_order(evaluator):
    def rule(variant, priority):
        return {"conditions": [], "variant": variant, "priority": priority}

    evaluator.update(
        [
            {"key": "ties", "enabled": True, "rules": [rule("first", 0), rule("second", 0), rule("third", 0)]},
            {"key": "higher-later", "enabled": True, "rules": [rule("low", 0), rule("high", 5)]},
            {"key": "mixed", "enabled": True, "rules": [rule("a", 1), rule("b", 2), rule("c", 2), rule("d", -3)]},
            {"key": "negative", "enabled": True, "rules": [rule("minus", -1), rule("zero", 0)]},
        ]
    )
    ctx = EvalContext("u")
    assert evaluator.get_variant("ties", ctx) == "first"
    assert evaluator.get_variant("higher-later", ctx) == "high"
    assert evaluator.get_variant("mixed", ctx) == "b"
    assert evaluator.get_variant("negative", ctx) == "zero"


def test_first_matching_rule_by_priority_wins(evaluator):
    evaluator.update(
        [
            {
                "key": "k",
                "enabled": True,
                "rules": [
                    {"conditions": [ENTERPRISE], "variant": "ent", "priority": 1},
                    {"conditions": [{"attribute": "country", "operator": "eq", "values": ["NL"]}], "variant": "nl"},
                    {"conditions": [ENTERPRISE], "variant": "ent-urgent", "priority": 9},
                ],
            }
        ]
    )
    assert evaluator.get_variant("k", EvalContext("u", plan="enterprise", country="NL")) == "ent-urgent"
    assert evaluator.get_variant("k", EvalContext("u", country="NL")) == "nl"


def test_disabled_flag_ignores_rules(evaluator):
    evaluator.update([{"key": "k", "enabled": False, "rules": [{"conditions": [], "variant": "x"}], "percentage": 50}])
    assert evaluator.evaluate("k", EvalContext("u")) == EvalResult(False, "", "disabled")


@pytest.mark.parametrize("percentage", [0, 100, 150, -5, 1e9])
def test_percentage_outside_the_open_range_means_everyone(evaluator, users, percentage):
    evaluator.update([{"key": "k", "enabled": True, "percentage": percentage, "default_variant": "dv"}])
    assert {evaluator.evaluate("k", u) for u in users[:500]} == {EvalResult(True, "dv", "default")}


def test_weighted_variants_follow_their_weights(evaluator, users):
    weights = {"a": 1, "b": 2, "c": 7, "never": 0}
    evaluator.update([{"key": "split", "enabled": True, "variants": weights}])
    counts = Counter(evaluator.get_variant("split", u) for u in users)
    assert set(counts) == {"a", "b", "c"}
    for name, expected_share in (("a", 0.1), ("b", 0.2), ("c", 0.7)):
        assert abs(counts[name] - expected_share * len(users)) <= 0.02 * len(users), counts


def test_weighted_variants_with_a_rollout_only_go_to_included_users(evaluator, users):
    evaluator.update([{"key": "split", "enabled": True, "percentage": 40, "variants": {"x": 1, "y": 1}}])
    results = [evaluator.evaluate("split", u) for u in users]
    assert {r.variant for r in results if r.enabled} == {"x", "y"}
    assert {r.variant for r in results if not r.enabled} == {""}
    assert {r.reason for r in results if r.enabled} == {"percentage"}


def test_raising_the_rollout_keeps_every_user_on_their_variant(evaluator, users):
    def variants_at(percentage):
        flag = {"key": "grow", "enabled": True, "percentage": percentage, "variants": {"a": 1, "b": 1, "c": 2}}
        evaluator.update([flag])
        return {u.user_id: r.variant for u in users if (r := evaluator.evaluate("grow", u)).enabled}

    at_20 = variants_at(20)
    at_60 = variants_at(60)
    assert 1_800 <= len(at_20) <= 2_200
    assert 5_800 <= len(at_60) <= 6_200
    assert at_20.keys() <= at_60.keys()
    assert all(at_60[user_id] == variant for user_id, variant in at_20.items())
    assert set(at_20.values()) == {"a", "b", "c"}


def test_zero_weights_fall_back_to_default_variant(evaluator, users):
    evaluator.update([{"key": "k", "enabled": True, "variants": {"a": 0, "b": 0}, "default_variant": "dv"}])
    assert {evaluator.get_variant("k", u) for u in users[:300]} == {"dv"}


def test_rule_variant_is_not_replaced_by_the_weighted_pick(evaluator):
    flag = {"key": "k", "enabled": True, "variants": {"a": 1}, "rules": [{"conditions": [ENTERPRISE], "variant": ""}]}
    evaluator.update([flag])
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise")) == EvalResult(True, "", "rule_match")
    assert evaluator.evaluate("k", EvalContext("u")) == EvalResult(False, "", "no_match")
    # With a rollout of 100 the contexts no rule takes get the weighted pick; a match still does not.
    evaluator.update([{**flag, "percentage": 100}])
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise")) == EvalResult(True, "", "rule_match")
    assert evaluator.evaluate("k", EvalContext("u")) == EvalResult(True, "a", "default")


def test_percentage_100_keeps_the_format_1_answer_for_contexts_no_rule_takes(evaluator, users):
    # docs/spec.md "What changed from format 1", item 1: 0 (or absent) serves only the rule matches,
    # 100 serves everyone else too, with reason "default"; a flag without rules is unchanged.
    rules = [{"conditions": [ENTERPRISE], "variant": "ent"}]
    evaluator.update(
        [
            {"key": "absent", "enabled": True, "rules": rules, "default_variant": "dv"},
            {"key": "zero", "enabled": True, "percentage": 0, "rules": rules, "default_variant": "dv"},
            {"key": "negative", "enabled": True, "percentage": -5, "rules": rules, "default_variant": "dv"},
            {"key": "hundred", "enabled": True, "percentage": 100, "rules": rules, "default_variant": "dv"},
            {"key": "no-rules-zero", "enabled": True, "percentage": 0, "default_variant": "dv"},
            {"key": "no-rules-absent", "enabled": True, "default_variant": "dv"},
        ]
    )
    free = [EvalContext(u.user_id, plan="free") for u in users[:300]]
    keys = evaluator.keys()
    answers = {key: {evaluator.evaluate(key, ctx) for ctx in free} for key in keys}
    assert answers == {
        "absent": {EvalResult(False, "", "no_match")},
        "zero": {EvalResult(False, "", "no_match")},
        "negative": {EvalResult(False, "", "no_match")},  # clamps to 0, with a warning
        "hundred": {EvalResult(True, "dv", "default")},
        "no-rules-zero": {EvalResult(True, "dv", "default")},
        "no-rules-absent": {EvalResult(True, "dv", "default")},
    }
    assert [w.path for w in evaluator.warnings] == ["flags[2].percentage"]
    enterprise = EvalContext("user-1", plan="enterprise")
    for key in ("absent", "zero", "negative", "hundred"):
        assert evaluator.evaluate(key, enterprise) == EvalResult(True, "ent", "rule_match"), key


def test_off_answers_carry_off_variant_and_its_value(evaluator):
    # docs/spec.md "What changed from format 1", item 5, and §2.2.
    common = {"off_variant": "none", "values": {"none": {"limit": 5}, "ent": {"limit": 50}, "": {"limit": 0}}}
    evaluator.update(
        [
            {"key": "disabled", "enabled": False, **common},
            {"key": "targeted", "enabled": True, "rules": [{"conditions": [ENTERPRISE], "variant": "ent"}], **common},
            {"key": "rollout", "enabled": True, "percentage": 1e-9, **common},
            {"key": "gated", "enabled": True, "prerequisites": [{"key": "disabled"}], **common},
        ]
    )
    free, enterprise = EvalContext("user-1", plan="free"), EvalContext("user-1", plan="enterprise")
    off = {"limit": 5}
    assert evaluator.evaluate("disabled", free) == EvalResult(False, "none", "disabled", off)
    assert evaluator.evaluate("targeted", free) == EvalResult(False, "none", "no_match", off)
    assert evaluator.evaluate("targeted", enterprise) == EvalResult(True, "ent", "rule_match", {"limit": 50})
    assert evaluator.evaluate("rollout", free) == EvalResult(False, "none", "percentage_excluded", off)
    assert evaluator.evaluate("gated", free) == EvalResult(False, "none", "prerequisite_failed", off)
    assert evaluator.evaluate("missing", free) == EvalResult(False, "", "not_found", None)
    # The value is the caller's own copy.
    evaluator.evaluate("disabled", free).value["limit"] = 999
    assert evaluator.get_value("disabled", free) == off


# --- warnings (docs/spec.md §5, §6) --------------------------------------------------------------------

WARNING_CASES = [
    pytest.param(
        [{"key": "k", "enabled": True, "rules": [{"conditions": [{"attribute": "a", "operator": "bogus"}]}]}],
        "flags[0].rules[0].conditions[0].operator",
        'unknown operator "bogus"',
        id="unknown-operator",
    ),
    pytest.param(
        [
            {
                "key": "k",
                "enabled": True,
                "rules": [
                    {"conditions": [ENTERPRISE]},
                    {"conditions": [ENTERPRISE, {"attribute": "a", "operator": "matches", "values": ["(unclosed"]}]},
                ],
            }
        ],
        "flags[0].rules[1].conditions[1].values[0]",
        "pattern does not compile",
        id="bad-regex",
    ),
    pytest.param(
        [{"key": "other", "enabled": True}, {"key": "k", "enabled": True}, {"key": "k", "enabled": False}],
        "flags[2].key",
        "duplicate key: replaces the flag at index 1",
        id="duplicate-key",
    ),
    pytest.param(
        [{"key": "k", "enabled": True, "variants": {"a": 0, "b": 0}}],
        "flags[0].variants",
        "weights sum to 0",
        id="zero-weights",
    ),
    pytest.param(
        [{"key": "k", "enabled": True, "percentage": 150}],
        "flags[0].percentage",
        "150 is outside [0, 100]",
        id="percentage-above-100",
    ),
    pytest.param(
        [{"key": "k", "enabled": True, "percentage": -5}],
        "flags[0].percentage",
        "-5 is outside [0, 100]",
        id="percentage-below-0",
    ),
]


@pytest.mark.parametrize(("document", "path", "message"), WARNING_CASES)
def test_problems_load_with_a_warning(evaluator, document, path, message):
    evaluator.update(document)
    assert evaluator.version == 1
    assert "k" in evaluator
    [warning] = evaluator.warnings
    assert isinstance(warning, ConfigWarning)
    assert (warning.flag, warning.path) == ("k", path)
    assert message in warning.message
    field = path.split(".", 1)[1]
    assert str(warning) == f'flag "k", field "{field}": {warning.message}'
    assert repr(warning) == f"ConfigWarning(flag='k', path={path!r}, message={warning.message!r})"
    assert warning == evaluator.warnings[0]
    assert hash(warning) == hash(evaluator.warnings[0])


def test_warnings_come_from_the_json_path_too_and_clear_on_a_clean_update(evaluator):
    evaluator.update_json(json.dumps([{"key": "k", "enabled": True, "percentage": 101}, {"key": "j", "enabled": True}]))
    assert [(w.flag, w.path) for w in evaluator.warnings] == [("k", "flags[0].percentage")]
    evaluator.update([{"key": "k", "enabled": True}])
    assert evaluator.warnings == []


def test_duplicate_key_later_flag_wins_in_the_first_place(evaluator):
    evaluator.update(
        [
            {"key": "dup", "enabled": True, "default_variant": "first"},
            {"key": "other", "enabled": True},
            {"key": "dup", "enabled": True, "default_variant": "second"},
        ]
    )
    assert evaluator.keys() == ["dup", "other"]
    assert len(evaluator) == 2
    assert evaluator.get_variant("dup", EvalContext("u")) == "second"
    assert evaluator.get_config("dup").default_variant == "second"


def test_a_condition_with_a_warning_never_matches_but_the_rest_works(evaluator):
    bad = {"attribute": "plan", "operator": "matches", "values": ["("]}
    evaluator.update(
        [
            {
                "key": "k",
                "enabled": True,
                "rules": [{"conditions": [bad], "variant": "bad"}, {"conditions": [ENTERPRISE], "variant": "ok"}],
            },
            {
                "key": "j",
                "enabled": True,
                "rules": [{"conditions": [{"attribute": "plan", "operator": "nope"}], "variant": "x"}],
            },
        ]
    )
    assert evaluator.evaluate("k", EvalContext("u", plan="(")) == EvalResult(False, "", "no_match")
    assert evaluator.evaluate("k", EvalContext("u", plan="enterprise")) == EvalResult(True, "ok", "rule_match")
    assert evaluator.evaluate("j", EvalContext("u", plan="")) == EvalResult(False, "", "no_match")
    assert len(evaluator.warnings) == 2


# --- version, keys, configs --------------------------------------------------------------------


def test_version_counts_successful_updates_only(evaluator, tmp_path):
    assert evaluator.version == 0
    evaluator.update(DOCUMENT)
    assert evaluator.version == 1
    evaluator.update_json("[]")
    assert evaluator.version == 2
    path = tmp_path / "f.json"
    path.write_text(json.dumps(DOCUMENT))
    evaluator.load_file(path)
    assert evaluator.version == 3
    evaluator.update([])
    assert evaluator.version == 4
    with pytest.raises(ConfigError):
        evaluator.update_json("[{")
    with pytest.raises(ConfigError):
        evaluator.update([{"key": "k"}])
    with pytest.raises(TypeError):
        evaluator.update([5])
    with pytest.raises(FileNotFoundError):
        evaluator.load_file(tmp_path / "missing.json")
    assert evaluator.version == 4
    assert repr(evaluator) == "FlagEvaluator(flags=0, version=4)"


def test_keys_len_contains(loaded):
    assert loaded.keys() == KEYS
    assert len(loaded) == 4
    assert "zeta-on" in loaded
    assert "alpha-off" in loaded  # disabled flags exist
    assert "missing" not in loaded
    assert "" not in loaded
    for not_a_str in (5, None, b"zeta-on", ("zeta-on",), 1.5):
        assert not_a_str not in loaded
    keys = loaded.keys()
    keys.append("mutated")
    assert loaded.keys() == KEYS
    assert repr(loaded) == "FlagEvaluator(flags=4, version=1)"


def test_get_config_and_configs(evaluator):
    objects = [
        FlagConfig(
            key="b",
            percentage=12.5,
            rules=[Rule([Condition("plan", "in", ["x", "y"])], "v", 3)],
            variants={"p": 1, "q": 2.5},
            default_variant="d",
        ),
        FlagConfig(key="a", enabled=False),
    ]
    evaluator.update([objects[0], objects[1].to_dict()])
    assert evaluator.get_config("b") == objects[0]
    assert evaluator.get_config("a") == objects[1]
    assert evaluator.get_config("missing") is None
    assert evaluator.configs() == objects
    assert [c.key for c in evaluator.configs()] == evaluator.keys()
    assert FlagEvaluator().configs() == []


# --- rejected documents (docs/spec.md §6) --------------------------------------------------------------

BAD_DOCUMENTS = [
    pytest.param("[{", None, "", "not valid JSON", id="not-json"),
    pytest.param("", None, "", "not valid JSON", id="empty"),
    pytest.param('[{"key": "k", "enabled": true, "percentage": NaN}]', None, "", "not valid JSON", id="nan-literal"),
    pytest.param('[{"key": "k", "enabled": true}] []', None, "", "not valid JSON", id="trailing"),
    pytest.param("5", None, "", "expected an array of flags", id="number-document"),
    pytest.param('"flags"', None, "", "expected an array of flags", id="string-document"),
    pytest.param('{"items": []}', None, "", '"flags" array', id="object-without-flags"),
    pytest.param('{"flags": {"key": "k"}}', None, "flags", "expected an array of flags", id="flags-not-array"),
    pytest.param("[5]", None, "flags[0]", "a flag must be an object", id="flag-not-object"),
    pytest.param('[{"enabled": true}]', None, "flags[0].key", "is required", id="missing-key"),
    pytest.param('[{"key": 5, "enabled": true}]', None, "flags[0].key", "expected a string", id="key-not-string"),
    pytest.param('[{"key": "", "enabled": true}]', None, "flags[0].key", "must not be empty", id="empty-key"),
    pytest.param('[{"key": "k"}]', "k", "flags[0].enabled", "is required", id="missing-enabled"),
    pytest.param('[{"key": "k", "enabled": "yes"}]', "k", "flags[0].enabled", "expected a bool", id="enabled-not-bool"),
    pytest.param('[{"key": "k", "enabled": 1}]', "k", "flags[0].enabled", "expected a bool", id="enabled-number"),
    pytest.param(
        '[{"key": "k", "enabled": true, "percentage": "50"}]',
        "k",
        "flags[0].percentage",
        "expected a number",
        id="pct-str",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "percentage": 1e400}]',
        "k",
        "flags[0].percentage",
        "not a finite number",
        id="pct-inf",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": {}}]', "k", "flags[0].rules", "expected an array", id="rules-obj"
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [5]}]', "k", "flags[0].rules[0]", "must be an object", id="rule-num"
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"priority": 1.5}]}]',
        "k",
        "flags[0].rules[0].priority",
        'expected an integer, got "1.5"',
        id="priority-float",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"variant": 3}]}]',
        "k",
        "flags[0].rules[0].variant",
        "expected a string",
        id="rule-variant-number",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"conditions": {}}]}]',
        "k",
        "flags[0].rules[0].conditions",
        "expected an array",
        id="conditions-object",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"conditions": [{"attribute": "a"}]}]}]',
        "k",
        "flags[0].rules[0].conditions[0].operator",
        "is required",
        id="missing-operator",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"conditions": [{"operator": "eq"}]}]}]',
        "k",
        "flags[0].rules[0].conditions[0].attribute",
        "is required",
        id="missing-attribute",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": "in", '
        '"values": "x"}]}]}]',
        "k",
        "flags[0].rules[0].conditions[0].values",
        "expected an array",
        id="values-string",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": "in", '
        '"values": [null]}]}]}]',
        "k",
        "flags[0].rules[0].conditions[0].values[0]",
        "expected a string or a number",
        id="value-null",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "variants": {"a": -1}}]',
        "k",
        "flags[0].variants.a",
        "must be >= 0",
        id="weight-neg",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "variants": {"a": "1"}}]',
        "k",
        "flags[0].variants.a",
        "expected a number",
        id="weight-s",
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "variants": []}]', "k", "flags[0].variants", "expected an object", id="vars"
    ),
    pytest.param(
        '[{"key": "k", "enabled": true, "default_variant": 5}]',
        "k",
        "flags[0].default_variant",
        "expected a string",
        id="dv",
    ),
    pytest.param(
        '{"flags": [{"key": "ok", "enabled": true}, {"key": "bad", "enabled": null}]}',
        "bad",
        "flags[1].enabled",
        "expected a bool, got null",
        id="second-flag",
    ),
]


def assert_rejected_and_unchanged(evaluator: FlagEvaluator, load, flag, path, message):
    before = snapshot_answers(evaluator, SAMPLE_CONTEXTS)
    version, warnings = evaluator.version, evaluator.warnings
    with pytest.raises(ConfigError) as excinfo:
        load()
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert isinstance(error, FerroflagError)
    assert (error.flag, error.path) == (flag, path)
    text = str(error)
    assert text.startswith("invalid flag document: ")
    assert message in text
    if flag is not None:
        assert f'flag "{flag}"' in text
    field = path.split(".", 1)[1] if path.startswith("flags[") and "." in path else ""
    if field:
        assert f'field "{field}"' in text
    assert evaluator.version == version
    assert evaluator.warnings == warnings
    assert snapshot_answers(evaluator, SAMPLE_CONTEXTS) == before


@pytest.mark.parametrize(("document", "flag", "path", "message"), BAD_DOCUMENTS)
def test_bad_document_is_rejected_whole(loaded, document, flag, path, message):
    loaded.update([*DOCUMENT, {"key": "warn", "enabled": True, "percentage": 200}])  # some warnings to keep
    assert_rejected_and_unchanged(loaded, lambda: loaded.update_json(document), flag, path, message)
    assert_rejected_and_unchanged(loaded, lambda: loaded.update_json(document.encode()), flag, path, message)


@pytest.mark.parametrize(("document", "flag", "path", "message"), BAD_DOCUMENTS[8:])
def test_bad_document_is_rejected_from_a_file(loaded, tmp_path, document, flag, path, message):
    file = tmp_path / "flags.json"
    file.write_text(document)
    assert_rejected_and_unchanged(loaded, lambda: loaded.load_file(file), flag, path, message)


BAD_DICTS = [
    pytest.param([{"enabled": True}], None, "flags[0].key", "is required", id="missing-key"),
    pytest.param([{"key": "k", "enabled": "yes"}], "k", "flags[0].enabled", "expected a bool", id="enabled-str"),
    pytest.param(
        [{"key": "k", "enabled": True, "percentage": True}], "k", "flags[0].percentage", "got a bool", id="pct-bool"
    ),
    pytest.param(
        [{"key": "ok", "enabled": True}, {"key": "k", "enabled": True, "rules": [{"priority": "1"}]}],
        "k",
        "flags[1].rules[0].priority",
        "expected an integer",
        id="priority-str",
    ),
    pytest.param(
        [
            {
                "key": "k",
                "enabled": True,
                "rules": [{"conditions": [{"attribute": "a", "operator": "eq", "values": [True]}]}],
            }
        ],
        "k",
        "flags[0].rules[0].conditions[0].values[0]",
        "expected a string or a number",
        id="value-bool",
    ),
]


@pytest.mark.parametrize(("flags", "flag", "path", "message"), BAD_DICTS)
def test_bad_dict_is_rejected_whole(loaded, flags, flag, path, message):
    assert_rejected_and_unchanged(loaded, lambda: loaded.update(flags), flag, path, message)
