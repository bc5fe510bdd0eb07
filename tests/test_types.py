"""Value types: EvalContext, EvalResult, FlagConfig, Rule, Condition, ConfigWarning, the exceptions
(STYLE R3: constructor-like repr, eq, hash, pickle, immutability)."""

from __future__ import annotations

import copy
import pickle

import ferroflag
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

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)

# --- EvalContext -------------------------------------------------------------------------------


def test_context_keyword_construction():
    ctx = EvalContext(user_id="u1", email="a@b.c", plan="pro", country="NL", properties={"tier": "gold"})
    assert (ctx.user_id, ctx.email, ctx.plan, ctx.country) == ("u1", "a@b.c", "pro", "NL")
    assert ctx.properties == {"tier": "gold"}


def test_context_positional_user_id_and_defaults():
    ctx = EvalContext("u1")
    assert (ctx.user_id, ctx.email, ctx.plan, ctx.country, ctx.properties) == ("u1", "", "", "", {})
    assert EvalContext("u1", "a@b.c", "pro", "NL", {"k": "v"}) == EvalContext(
        user_id="u1", email="a@b.c", plan="pro", country="NL", properties={"k": "v"}
    )
    assert EvalContext("u1", properties=None) == EvalContext("u1")


@pytest.mark.parametrize(("user_id", "text"), [(42, "42"), (0, "0"), (-7, "-7"), (10**30, "1" + "0" * 30)])
def test_context_int_user_id_is_stored_as_text(user_id, text):
    ctx = EvalContext(user_id)
    assert ctx.user_id == text
    assert ctx == EvalContext(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        ("", ""),
        (3, "3"),
        (-2, "-2"),
        (10**20, "100000000000000000000"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e16, "1e+16"),
        (-0.0, "-0.0"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_context_property_values_are_stored_as_text(value, text):
    ctx = EvalContext("u", properties={"p": value})
    assert ctx.properties == {"p": text}
    assert ctx.get("p") == text


def test_context_properties_are_sorted_and_a_fresh_dict_each_time():
    ctx = EvalContext("u", properties={"b": "2", "a": "1"})
    assert list(ctx.properties) == ["a", "b"]
    props = ctx.properties
    props["a"] = "changed"
    props["c"] = "new"
    assert ctx.properties == {"a": "1", "b": "2"}
    assert ctx.properties is not ctx.properties


def test_context_does_not_keep_the_callers_dict():
    given = {"a": "1"}
    ctx = EvalContext("u", properties=given)
    given["a"] = "changed"
    assert ctx.properties == {"a": "1"}


def test_context_get_reads_like_a_condition():
    ctx = EvalContext("u", email="e", plan="p", country="c", properties={"tier": "gold", "plan": "shadowed"})
    assert [ctx.get(name) for name in ("user_id", "email", "plan", "country", "tier", "missing")] == [
        "u",
        "e",
        "p",
        "c",
        "gold",
        "",
    ]


def test_context_repr():
    assert repr(EvalContext("u")) == "EvalContext(user_id='u')"
    ctx = EvalContext("u'1", plan="pro", properties={"n": 3, "beta": True})
    assert repr(ctx) == "EvalContext(user_id=\"u'1\", plan='pro', properties={'beta': 'true', 'n': '3'})"
    full = EvalContext("u", email="e", plan="p", country="c", properties={"x": "y"})
    assert repr(full) == "EvalContext(user_id='u', email='e', plan='p', country='c', properties={'x': 'y'})"
    for c in (ctx, full, EvalContext("")):
        assert eval(repr(c), {"EvalContext": EvalContext}) == c


def test_context_eq_and_hash():
    a = EvalContext("u", plan="p", properties={"x": "1", "y": "2"})
    b = EvalContext("u", plan="p", properties={"y": "2", "x": 1})
    assert a == b
    assert not a != b  # noqa: SIM202 - the != operator itself is under test
    assert hash(a) == hash(b)
    assert len({a, b, EvalContext("u", plan="p", properties={"x": "1", "y": "2"})}) == 1
    for other in (
        EvalContext("v", plan="p", properties={"x": "1", "y": "2"}),
        EvalContext("u", plan="q", properties={"x": "1", "y": "2"}),
        EvalContext("u", plan="p", properties={"x": "1"}),
        EvalContext("u", plan="p", email="e", properties={"x": "1", "y": "2"}),
    ):
        assert a != other
    assert EvalContext("u") != "u"
    assert EvalContext("u") != {"user_id": "u"}
    with pytest.raises(TypeError):
        _ = EvalContext("a") < EvalContext("b")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_context_pickle_round_trip(protocol):
    ctx = EvalContext("u", email="e", plan="p", country="c", properties={"n": 3, "b": False, "s": "x"})
    clone = pickle.loads(pickle.dumps(ctx, protocol=protocol))
    assert clone == ctx
    assert clone.properties == {"b": "false", "n": "3", "s": "x"}
    assert copy.copy(ctx) == ctx
    assert copy.deepcopy(ctx) == ctx


@pytest.mark.parametrize("name", ["user_id", "email", "plan", "country", "properties", "new_attribute"])
def test_context_is_frozen(name):
    ctx = EvalContext("u", properties={"a": "1"})
    with pytest.raises(AttributeError):
        setattr(ctx, name, "x")
    with pytest.raises(AttributeError):
        delattr(ctx, name)
    assert ctx == EvalContext("u", properties={"a": "1"})


def test_types_cannot_be_subclassed():
    for cls in (EvalContext, EvalResult, FlagConfig, Rule, Condition, FlagEvaluator, ConfigWarning):
        with pytest.raises(TypeError):
            type("Sub", (cls,), {})


# --- EvalResult --------------------------------------------------------------------------------


def test_result_fields_and_defaults():
    r = EvalResult(True, "b", "rule_match")
    assert (r.enabled, r.variant, r.reason, r.value) == (True, "b", "rule_match", None)
    assert EvalResult(True) == EvalResult(True, "", "default")
    assert EvalResult(True) == EvalResult(True, "", "default", None)
    assert EvalResult(enabled=False, variant="", reason="not_found") == EvalResult(False, reason="not_found")
    with_value = EvalResult(False, "none", "no_match", {"max_items": 5})
    assert (with_value.enabled, with_value.variant, with_value.reason) == (False, "none", "no_match")
    assert with_value.value == {"max_items": 5}
    assert EvalResult(True, value=[1, "a"]).value == [1, "a"]


def test_result_repr():
    assert repr(EvalResult(True, "b", "rule_match")) == "EvalResult(enabled=True, variant='b', reason='rule_match')"
    assert repr(EvalResult(False, "", "not_found")) == "EvalResult(enabled=False, variant='', reason='not_found')"
    r = EvalResult(True, "it's", "percentage")
    assert eval(repr(r), {"EvalResult": EvalResult}) == r
    # A value shows only when there is one.
    v = EvalResult(False, "none", "no_match", {"max_items": 5})
    assert repr(v) == "EvalResult(enabled=False, variant='none', reason='no_match', value={'max_items': 5})"
    assert eval(repr(v), {"EvalResult": EvalResult}) == v


def test_result_eq_and_hash():
    r = EvalResult(True, "b", "rule_match")
    assert r == EvalResult(True, "b", "rule_match")
    assert hash(r) == hash(EvalResult(True, "b", "rule_match"))
    assert r != EvalResult(False, "b", "rule_match")
    assert r != EvalResult(True, "c", "rule_match")
    assert r != EvalResult(True, "b", "default")
    assert r != (True, "b", "rule_match")
    assert len({r, EvalResult(True, "b", "rule_match"), EvalResult(True, "", "default")}) == 2
    # The value is part of the answer.
    assert r != EvalResult(True, "b", "rule_match", 5)
    assert EvalResult(True, "b", "rule_match", {"a": [1]}) == EvalResult(True, "b", "rule_match", {"a": [1]})
    assert EvalResult(True, "b", "rule_match", {"a": [1]}) != EvalResult(True, "b", "rule_match", {"a": [2]})


def test_result_from_evaluate_equals_a_constructed_one():
    # Internally an evaluated result may hold an empty variant where a constructed one holds none;
    # they are the same answer, and must compare and hash alike.
    evaluator = FlagEvaluator([{"key": "on", "enabled": True}, {"key": "off", "enabled": False}])
    on = evaluator.evaluate("on", EvalContext("u"))
    assert on == EvalResult(True, "", "default")
    assert hash(on) == hash(EvalResult(True, "", "default"))
    assert {on, EvalResult(True, "", "default")} == {on}
    assert evaluator.evaluate("off", EvalContext("u")) == EvalResult(False, "", "disabled")
    assert evaluator.evaluate("missing", EvalContext("u")) == EvalResult(False, "", "not_found")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_result_pickle_round_trip(protocol):
    for r in (
        EvalResult(True, "b", "rule_match"),
        EvalResult(False, "", "percentage_excluded"),
        EvalResult(False, "none", "no_match", {"max_items": 5, "tags": ["a"]}),
        EvalResult(False, "off", "prerequisite_failed", 0.15),
    ):
        clone = pickle.loads(pickle.dumps(r, protocol=protocol))
        assert clone == r
        assert (clone.enabled, clone.variant, clone.reason, clone.value) == (r.enabled, r.variant, r.reason, r.value)
    assert copy.deepcopy(r) == r


def describe(result: EvalResult) -> str:
    match result:
        case EvalResult(True, variant, "rule_match", None):
            return f"targeted:{variant}"
        case EvalResult(True, variant, "rule_match", {"limit": limit}):
            return f"targeted:{variant}:limit={limit}"
        case EvalResult(True, "", reason):
            return f"on:{reason}"
        case EvalResult(False, _, "not_found"):
            return "missing"
        case EvalResult(False, _, "no_match" | "prerequisite_failed" as reason, value) if value is not None:
            return f"off:{reason}:{value}"
        case EvalResult(enabled=False, reason=reason):
            return f"off:{reason}"
    return "other"


def test_result_match_statement():
    assert EvalResult.__match_args__ == ("enabled", "variant", "reason", "value")
    assert describe(EvalResult(True, "v2", "rule_match")) == "targeted:v2"
    assert describe(EvalResult(True, "v2", "rule_match", {"limit": 50})) == "targeted:v2:limit=50"
    assert describe(EvalResult(True, "", "percentage")) == "on:percentage"
    assert describe(EvalResult(False, "", "not_found")) == "missing"
    assert describe(EvalResult(False, "", "disabled")) == "off:disabled"
    assert describe(EvalResult(False, "", "no_match")) == "off:no_match"
    assert describe(EvalResult(False, "none", "no_match", 5)) == "off:no_match:5"
    assert describe(EvalResult(False, "none", "prerequisite_failed", 5)) == "off:prerequisite_failed:5"
    assert describe(EvalResult(True, "x", "default")) == "other"


@pytest.mark.parametrize("reason", ["", "bogus", "Default", "rule-match", "percentage "])
def test_result_unknown_reason_is_a_value_error(reason):
    with pytest.raises(ValueError, match="unknown reason") as excinfo:
        EvalResult(True, "", reason)
    expected = (
        "not_found, disabled, prerequisite_failed, rule_match, percentage, percentage_excluded, no_match, default"
    )
    assert expected in str(excinfo.value)


@pytest.mark.parametrize(
    ("reason", "enabled"),
    [
        ("not_found", False),
        ("disabled", False),
        ("prerequisite_failed", False),
        ("rule_match", True),
        ("percentage", True),
        ("percentage_excluded", False),
        ("no_match", False),
        ("default", True),
    ],
)
def test_result_accepts_every_reason(reason, enabled):
    # docs/spec.md §2: the reasons table, the format-2 ones (prerequisite_failed, no_match) included.
    result = EvalResult(enabled, "", reason)
    assert (result.enabled, result.reason) == (enabled, reason)


def test_result_is_frozen():
    r = EvalResult(True, "b", "rule_match")
    for name in ("enabled", "variant", "reason", "value", "other"):
        with pytest.raises(AttributeError):
            setattr(r, name, "x")


# --- Condition, Rule, FlagConfig ---------------------------------------------------------------


def test_condition_shape():
    c = Condition("plan", "in", ["enterprise"])
    assert (c.attribute, c.operator, c.values) == ("plan", "in", ["enterprise"])
    assert Condition(attribute="plan", operator="in", values=["enterprise"]) == c
    assert Condition("plan", "eq").values == []
    assert Condition("n", "in", [1, 2.5, "x", -3]).values == ["1", "2.5", "x", "-3"]
    assert Condition("n", "in", ("a", "b")).values == ["a", "b"]
    assert Condition("a", "no-such-operator", []).operator == "no-such-operator"  # reported on load, not here


def test_rule_shape():
    conditions = [Condition("plan", "in", ["enterprise"]), Condition("country", "eq", ["NL"])]
    r = Rule(conditions=conditions, variant="v2", priority=10)
    assert (r.conditions, r.variant, r.priority) == (conditions, "v2", 10)
    assert Rule() == Rule(conditions=[], variant="", priority=0)
    assert Rule(conditions=[], variant="", priority=0).conditions == []
    assert Rule(conditions=[{"attribute": "plan", "operator": "in", "values": ["enterprise"]}]).conditions == [
        Condition("plan", "in", ["enterprise"])
    ]
    assert Rule(priority=-5).priority == -5


def test_flag_config_shape():
    rule = Rule(conditions=[Condition("plan", "in", ["enterprise"])], variant="v2", priority=10)
    f = FlagConfig(
        key="new-checkout",
        enabled=True,
        percentage=25.0,
        rules=[rule],
        variants={"control": 50, "treatment": 50},
        default_variant="control",
    )
    assert (f.key, f.enabled, f.percentage, f.rules, f.default_variant) == (
        "new-checkout",
        True,
        25.0,
        [rule],
        "control",
    )
    assert f.variants == {"control": 50.0, "treatment": 50.0}
    default = FlagConfig("k")
    assert (default.enabled, default.percentage, default.rules, default.variants, default.default_variant) == (
        True,
        0.0,
        [],
        {},
        "",
    )
    assert FlagConfig("k", percentage=50).percentage == 50.0
    assert FlagConfig("k", rules=[{"conditions": [], "variant": "x"}]).rules == [Rule(variant="x")]


def test_variant_order_does_not_make_another_flag():
    a = FlagConfig("k", variants={"treatment": 1, "control": 2})
    b = FlagConfig("k", variants={"control": 2, "treatment": 1})
    assert a == b
    assert list(a.variants) == ["control", "treatment"]  # kept sorted by name, the order the pick walks
    assert FlagConfig.from_dict({"key": "k", "enabled": True, "variants": {"treatment": 1, "control": 2}}) == a
    evaluator = FlagEvaluator()
    evaluator.update_json('[{"key": "k", "enabled": true, "variants": {"treatment": 1, "control": 2}}]')
    assert evaluator.get_config("k") == a


def test_getters_return_copies():
    f = FlagConfig("k", rules=[Rule([Condition("a", "in", ["x"])])], variants={"a": 1})
    f.rules.append(Rule())
    f.variants["b"] = 2
    f.rules[0].conditions.append(Condition("b", "eq", []))
    f.rules[0].conditions[0].values.append("y")
    assert f == FlagConfig("k", rules=[Rule([Condition("a", "in", ["x"])])], variants={"a": 1})


def test_to_dict():
    assert Condition("plan", "in", ["enterprise", 3]).to_dict() == {
        "attribute": "plan",
        "operator": "in",
        "values": ["enterprise", "3"],
    }
    assert Rule([Condition("a", "eq", ["x"])], "v", 2).to_dict() == {
        "conditions": [{"attribute": "a", "operator": "eq", "values": ["x"]}],
        "variant": "v",
        "priority": 2,
    }
    as_dict = FlagConfig("k", False, 12.5, [Rule(variant="v")], {"a": 1, "b": 0.5}, "a").to_dict()
    assert as_dict == {
        "key": "k",
        "enabled": False,
        "percentage": 12.5,
        "rules": [{"conditions": [], "variant": "v", "priority": 0}],
        "variants": {"a": 1, "b": 0.5},
        "default_variant": "a",
    }
    assert type(FlagConfig("k", percentage=50).to_dict()["percentage"]) is int


SAMPLES = [
    Condition("plan", "in", ["enterprise", "team"]),
    Condition("v", "semver_gt", []),
    Rule(),
    Rule([Condition("plan", "in", ["enterprise"]), Condition("n", "gte", ["18"])], "v2", 10),
    FlagConfig("k"),
    FlagConfig(
        key="new-checkout",
        enabled=False,
        percentage=33.3,
        rules=[Rule([Condition("plan", "in", ["enterprise"])], "v2", 10), Rule(variant="all", priority=-1)],
        variants={"treatment": 50, "control": 50.5},
        default_variant="control",
    ),
]


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_dict_round_trip(value):
    again = type(value).from_dict(value.to_dict())
    assert again == value
    assert again.to_dict() == value.to_dict()


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pickle_round_trip(value, protocol):
    clone = pickle.loads(pickle.dumps(value, protocol=protocol))
    assert clone == value
    assert type(clone) is type(value)
    assert copy.deepcopy(value) == value


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_repr_reads_like_the_constructor_call(value):
    namespace = {"Condition": Condition, "Rule": Rule, "FlagConfig": FlagConfig}
    assert eval(repr(value), namespace) == value


def test_reprs():
    c = Condition("plan", "in", ["enterprise"])
    assert repr(c) == "Condition('plan', 'in', ['enterprise'])"
    assert (
        repr(Rule([c], "v", 2)) == "Rule(conditions=[Condition('plan', 'in', ['enterprise'])], variant='v', priority=2)"
    )
    assert repr(FlagConfig("k", percentage=50, variants={"a": 1})) == (
        "FlagConfig(key='k', enabled=True, percentage=50.0, rules=[], variants={'a': 1.0}, default_variant='')"
    )


def test_config_types_eq_and_no_hash():
    assert Condition("a", "eq", ["x"]) == Condition("a", "eq", ["x"])
    assert Condition("a", "eq", ["x"]) != Condition("a", "eq", ["y"])
    assert Condition("a", "eq", ["x"]) != Condition("a", "neq", ["x"])
    assert Rule(variant="a") != Rule(variant="b")
    assert Rule(priority=1) != Rule(priority=2)
    assert FlagConfig("k") != FlagConfig("k", enabled=False)
    assert FlagConfig("k") != FlagConfig("k", percentage=1)
    assert FlagConfig("k", variants={"a": 1}) != FlagConfig("k", variants={"a": 2})
    assert FlagConfig("k") != {"key": "k", "enabled": True}
    for value in (Condition("a", "eq"), Rule(), FlagConfig("k")):
        with pytest.raises(TypeError, match="unhashable"):
            hash(value)


@pytest.mark.parametrize("value", SAMPLES[:1] + SAMPLES[2:3] + SAMPLES[4:5], ids=repr)
def test_config_types_are_frozen(value):
    for name in ("key", "rules", "values", "variant", "anything"):
        with pytest.raises(AttributeError):
            setattr(value, name, "x")


def test_from_dict_ignores_unknown_keys():
    assert Condition.from_dict({"attribute": "a", "operator": "eq", "note": 1}) == Condition("a", "eq")
    assert Rule.from_dict({"variant": "v", "comment": "x"}) == Rule(variant="v")
    assert FlagConfig.from_dict({"key": "k", "enabled": True, "owner": "me"}) == FlagConfig("k")


@pytest.mark.parametrize(
    ("cls", "data", "flag", "path", "message"),
    [
        (FlagConfig, {"key": "k"}, "k", "flags[0].enabled", "is required"),
        (FlagConfig, {"enabled": True}, None, "flags[0].key", "is required"),
        (FlagConfig, {"key": "k", "enabled": True, "percentage": "1"}, "k", "flags[0].percentage", "expected a number"),
        (FlagConfig, {"key": "k", "enabled": True, "percentage": float("nan")}, "k", "flags[0].percentage", "nan"),
        (Rule, {"priority": "1"}, None, "rule.priority", "expected an integer"),
        (Rule, {"conditions": [{"attribute": "a"}]}, None, "rule.conditions[0].operator", "is required"),
        (Condition, {"attribute": "a"}, None, "condition.operator", "is required"),
        (Condition, {"attribute": "a", "operator": "in", "values": [None]}, None, "condition.values[0]", "a string or"),
        (Condition, {"attribute": "a", "operator": "in", "values": [float("inf")]}, None, "condition.values[0]", "inf"),
    ],
)
def test_from_dict_errors(cls, data, flag, path, message):
    with pytest.raises(ConfigError) as excinfo:
        cls.from_dict(data)
    assert (excinfo.value.flag, excinfo.value.path) == (flag, path)
    assert message in str(excinfo.value)


@pytest.mark.parametrize("cls", [FlagConfig, Rule, Condition])
@pytest.mark.parametrize("data", [None, [], "{}", 5])
def test_from_dict_needs_a_dict(cls, data):
    with pytest.raises(TypeError, match=rf"{cls.__name__}\.from_dict\(\) takes a dict"):
        cls.from_dict(data)


# --- warnings and exceptions -------------------------------------------------------------------


def test_config_warning_is_read_only_and_not_constructible():
    evaluator = FlagEvaluator([{"key": "k", "enabled": True, "percentage": 101}])
    [warning] = evaluator.warnings
    with pytest.raises(AttributeError):
        warning.message = "x"
    with pytest.raises(TypeError):
        ConfigWarning()


def test_exception_hierarchy():
    assert issubclass(ConfigError, FerroflagError)
    assert issubclass(ConfigError, ValueError)
    assert issubclass(FerroflagError, Exception)
    assert not issubclass(FerroflagError, ValueError)
    assert ConfigError.__module__ == FerroflagError.__module__ == "ferroflag"
    assert ferroflag.ConfigError is ConfigError


def test_config_error_attributes_default_when_raised_by_hand():
    error = ConfigError("by hand")
    assert (error.flag, error.path, str(error)) == (None, "", "by hand")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is ConfigError
    assert str(clone) == "by hand"


def test_version_string():
    assert isinstance(ferroflag.__version__, str)
    assert ferroflag.__version__.count(".") >= 2
