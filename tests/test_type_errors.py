"""Wrong Python types raise a TypeError that names the argument (never a crash), values that cannot
be a flag raise ConfigError, and the evaluator keeps answering afterwards."""

from __future__ import annotations

import json
import math
import re

import pytest
from ferroflag import (
    Condition,
    ConfigError,
    ConfigTypeError,
    ConfigWarning,
    EvalContext,
    EvalResult,
    FlagConfig,
    FlagEvaluator,
    Rule,
)

CTX = EvalContext("u", plan="enterprise")
FLAG = {
    "key": "k",
    "enabled": True,
    "rules": [{"conditions": [{"attribute": "plan", "operator": "in", "values": ["enterprise"]}], "variant": "ent"}],
}
EXPECTED = EvalResult(True, "ent", "rule_match")
NO_MATCH = EvalResult(False, "", "no_match")  # a plan no rule takes (docs/spec.md §2 step 5)


def error_text(error: BaseException) -> str:
    """The message plus its notes: PyO3 names a failed argument in a note ("while processing 'key'")."""
    return "\n".join([str(error), *getattr(error, "__notes__", [])])


@pytest.fixture
def answering():
    evaluator = FlagEvaluator([FLAG])
    yield evaluator
    # Whatever the test threw at it, the evaluator still answers, from the same snapshot.
    assert evaluator.evaluate("k", CTX) == EXPECTED
    assert evaluator.evaluate("k", EvalContext("u", plan="free")) == NO_MATCH
    assert evaluator.is_enabled("k", {"user_id": "u", "plan": "enterprise"}) is True
    assert evaluator.version == 1
    assert evaluator.warnings == []


TYPE_ERRORS = [
    # FlagEvaluator methods
    pytest.param(lambda e: e.evaluate(123, CTX), "key", id="evaluate-key-int"),
    pytest.param(lambda e: e.evaluate(None, CTX), "key", id="evaluate-key-none"),
    pytest.param(lambda e: e.evaluate("k", 5), "ctx", id="evaluate-ctx-int"),
    pytest.param(lambda e: e.evaluate("k", None), "ctx", id="evaluate-ctx-none"),
    pytest.param(lambda e: e.evaluate("k", "u"), "ctx", id="evaluate-ctx-str"),
    pytest.param(lambda e: e.evaluate("k", [("user_id", "u")]), "ctx", id="evaluate-ctx-list"),
    pytest.param(lambda e: e.is_enabled("k", CTX, default="x"), "default", id="is_enabled-default-str"),
    pytest.param(lambda e: e.is_enabled("k", CTX, default=1), "default", id="is_enabled-default-int"),
    pytest.param(lambda e: e.is_enabled("k", CTX, default=None), "default", id="is_enabled-default-none"),
    pytest.param(lambda e: e.is_enabled(b"k", CTX), "key", id="is_enabled-key-bytes"),
    pytest.param(lambda e: e.get_variant(1.5, CTX), "key", id="get_variant-key"),
    pytest.param(lambda e: e.evaluate_all(42), "ctx", id="evaluate_all-ctx"),
    pytest.param(lambda e: e.explain("k", 42), "ctx", id="explain-ctx"),
    pytest.param(lambda e: e.is_enabled_many("k", 5), "contexts", id="is_enabled_many-not-iterable"),
    pytest.param(lambda e: e.is_enabled_many("k", [CTX, 5]), "contexts", id="is_enabled_many-item"),
    pytest.param(lambda e: e.is_enabled_many("k", "abc"), "contexts", id="is_enabled_many-str"),
    pytest.param(lambda e: e.is_enabled_many("k", [CTX], default="yes"), "default", id="is_enabled_many-default"),
    pytest.param(lambda e: e.get_config(5), "key", id="get_config-key"),
    pytest.param(lambda e: e.update(42), "flags", id="update-int"),
    pytest.param(lambda e: e.update(None), "flags", id="update-none"),
    pytest.param(lambda e: e.update("str"), "update_json()", id="update-str"),
    pytest.param(lambda e: e.update(b"[]"), "update_json()", id="update-bytes"),
    pytest.param(lambda e: e.update({"flags": []}), "update_json()", id="update-dict"),
    pytest.param(lambda e: e.update([1]), "flags[0]", id="update-item-int"),
    pytest.param(lambda e: e.update([FLAG, "k"]), "flags[1]", id="update-item-str"),
    pytest.param(lambda e: e.update([Rule()]), "flags[0]", id="update-item-rule"),
    pytest.param(
        lambda e: e.update([{"key": "k", "enabled": True, "rules": {1, 2}}]), "flags[0].rules", id="update-set"
    ),
    pytest.param(lambda e: e.update([{1: "x"}]), "dict keys must be str", id="update-non-str-key"),
    pytest.param(
        lambda e: e.update(
            [{"key": "k", "enabled": True, "rules": [{"conditions": [{"attribute": "a", "values": [object()]}]}]}]
        ),
        "flags[0].rules[0].conditions[0].values[0]",
        id="update-object-value",
    ),
    pytest.param(lambda e: e.update_json(5), "document", id="update_json-int"),
    pytest.param(lambda e: e.update_json(None), "document", id="update_json-none"),
    pytest.param(lambda e: e.update_json([FLAG]), "document", id="update_json-list"),
    pytest.param(lambda e: e.update_json(memoryview(b"[]")), "document", id="update_json-memoryview"),
    pytest.param(lambda e: e.load_file(5), "path", id="load_file-int"),
    pytest.param(lambda e: e.load_file(None), "path", id="load_file-none"),
    # EvalContext
    pytest.param(lambda e: EvalContext(user_id=None), "user_id", id="context-user_id-none"),
    pytest.param(lambda e: EvalContext(1.5), "user_id", id="context-user_id-float"),
    pytest.param(lambda e: EvalContext(True), "user_id", id="context-user_id-bool"),
    pytest.param(lambda e: EvalContext(b"u"), "user_id", id="context-user_id-bytes"),
    pytest.param(lambda e: EvalContext("u", email=5), "email", id="context-email-int"),
    pytest.param(lambda e: EvalContext("u", plan=None), "plan", id="context-plan-none"),
    pytest.param(lambda e: EvalContext("u", country=["NL"]), "country", id="context-country-list"),
    pytest.param(lambda e: EvalContext("u", properties=[1]), "properties", id="context-properties-list"),
    pytest.param(lambda e: EvalContext("u", properties="a=1"), "properties", id="context-properties-str"),
    pytest.param(lambda e: EvalContext("u", properties={1: "a"}), "property names", id="context-property-int-name"),
    pytest.param(lambda e: EvalContext("u", properties={"a": None}), 'properties["a"]', id="context-property-none"),
    # A list of scalars is a list property (docs/spec.md §4); a list holding anything else is not.
    pytest.param(
        lambda e: EvalContext("u", properties={"a": ["x", [1]]}),
        'properties["a"][1] must be a str, int, float or bool, got list',
        id="context-property-nested-list",
    ),
    pytest.param(
        lambda e: EvalContext("u", properties={"a": [{"b": 1}]}),
        'properties["a"][0] must be a str, int, float or bool, got dict',
        id="context-property-dict-in-list",
    ),
    pytest.param(
        lambda e: EvalContext("u", properties={"a": [None]}),
        'properties["a"][0] must be a str, int, float or bool, got NoneType',
        id="context-property-none-in-list",
    ),
    pytest.param(
        lambda e: EvalContext("u", properties={"a": ("x", b"y")}),
        'properties["a"][1] must be a str, int, float or bool, got bytes',
        id="context-property-bytes-in-tuple",
    ),
    pytest.param(
        lambda e: EvalContext("u", properties={"a": {"x", "y"}}),
        'properties["a"] must be a str, int, float, bool, or a list of them, got set',
        id="context-property-set",
    ),
    pytest.param(lambda e: EvalContext("u", properties={"a": {"b": 1}}), 'properties["a"]', id="context-property-dict"),
    pytest.param(lambda e: EvalContext("u", properties={"a": b"x"}), 'properties["a"]', id="context-property-bytes"),
    pytest.param(lambda e: EvalContext("u", nickname="x"), "nickname", id="context-unknown-keyword"),
    # dict contexts
    pytest.param(lambda e: e.evaluate("k", {"user_id": "u", "userid": "x"}), '"userid"', id="dict-ctx-unknown-key"),
    pytest.param(lambda e: e.evaluate("k", {"user_id": "u", "tier": "gold"}), '"tier"', id="dict-ctx-property-at-top"),
    pytest.param(lambda e: e.evaluate("k", {1: "u"}), "keys must be str", id="dict-ctx-int-key"),
    pytest.param(lambda e: e.evaluate("k", {"user_id": None}), "user_id", id="dict-ctx-user_id-none"),
    pytest.param(lambda e: e.evaluate("k", {"user_id": "u", "email": 5}), "email", id="dict-ctx-email-int"),
    pytest.param(
        lambda e: e.evaluate("k", {"user_id": "u", "properties": [1]}), "properties", id="dict-ctx-props-list"
    ),
    pytest.param(lambda e: e.evaluate("k", {"properties": {"a": None}}), 'properties["a"]', id="dict-ctx-prop-none"),
    pytest.param(
        lambda e: e.evaluate("k", {"properties": {"a": [[1]]}}), 'properties["a"][0]', id="dict-ctx-prop-nested-list"
    ),
    pytest.param(lambda e: e.is_enabled_many("k", [{"user_id": "u", "x": 1}]), '"x"', id="many-dict-unknown-key"),
    # Condition, Rule, FlagConfig
    pytest.param(lambda e: Condition("a", "eq", "notalist"), "values", id="condition-values-str"),
    pytest.param(lambda e: Condition("a", "eq", {"x": 1}), "values", id="condition-values-dict"),
    pytest.param(lambda e: Condition("a", "eq", 5), "values", id="condition-values-int"),
    pytest.param(lambda e: Condition("a", "eq", [True]), "values[0]", id="condition-value-bool"),
    pytest.param(lambda e: Condition("a", "eq", ["x", None]), "values[1]", id="condition-value-none"),
    pytest.param(lambda e: Condition(1, "eq", []), "attribute", id="condition-attribute-int"),
    pytest.param(lambda e: Condition("a", None, []), "operator", id="condition-operator-none"),
    pytest.param(lambda e: Rule(conditions="x"), "conditions", id="rule-conditions-str"),
    pytest.param(lambda e: Rule(conditions=5), "conditions", id="rule-conditions-int"),
    pytest.param(lambda e: Rule(conditions=["x"]), "conditions[0]", id="rule-condition-str"),
    pytest.param(lambda e: Rule(conditions=[Rule()]), "conditions[0]", id="rule-condition-rule"),
    pytest.param(lambda e: Rule(priority=1.5), "priority", id="rule-priority-float"),
    pytest.param(lambda e: Rule(priority="1"), "priority", id="rule-priority-str"),
    pytest.param(lambda e: Rule(variant=1), "variant", id="rule-variant-int"),
    pytest.param(lambda e: FlagConfig(key=1), "key", id="flag-key-int"),
    pytest.param(lambda e: FlagConfig(key=None), "key", id="flag-key-none"),
    pytest.param(lambda e: FlagConfig("k", enabled="yes"), "enabled", id="flag-enabled-str"),
    pytest.param(lambda e: FlagConfig("k", enabled=1), "enabled", id="flag-enabled-int"),
    pytest.param(lambda e: FlagConfig(key="k", percentage="x"), "percentage", id="flag-percentage-str"),
    pytest.param(lambda e: FlagConfig(key="k", percentage=None), "percentage", id="flag-percentage-none"),
    pytest.param(lambda e: FlagConfig("k", rules={"a": 1}), "rules", id="flag-rules-dict"),
    pytest.param(lambda e: FlagConfig("k", rules="r"), "rules", id="flag-rules-str"),
    pytest.param(lambda e: FlagConfig("k", rules=[5]), "rules[0]", id="flag-rule-int"),
    pytest.param(lambda e: FlagConfig("k", rules=[Condition("a", "eq")]), "rules[0]", id="flag-rule-condition"),
    pytest.param(lambda e: FlagConfig("k", variants=["a"]), "variants", id="flag-variants-list"),
    # Constructors check through the core (docs/spec.md §8): the message names the field as a document path.
    pytest.param(
        lambda e: FlagConfig("k", variants={"a": "x"}),
        'flag "k", field "variants.a": expected a number, got a string',
        id="flag-weight-str",
    ),
    pytest.param(
        lambda e: FlagConfig("k", variants={"a": True}),
        'flag "k", field "variants.a": expected a number, got a bool',
        id="flag-weight-bool",
    ),
    pytest.param(
        lambda e: FlagConfig("k", variants={"a": None}),
        'flag "k", field "variants.a": expected a number, got null',
        id="flag-weight-none",
    ),
    pytest.param(
        lambda e: FlagConfig("k", variants={1: 1}),
        "variants: dict keys must be str, got int",
        id="flag-variant-name-int",
    ),
    pytest.param(lambda e: FlagConfig("k", default_variant=0), "default_variant", id="flag-default-variant-int"),
    pytest.param(lambda e: FlagConfig.from_dict([("key", "k")]), "takes a dict", id="from_dict-list"),
    pytest.param(lambda e: EvalResult("yes"), "enabled", id="result-enabled-str"),
    pytest.param(lambda e: EvalResult(True, None), "variant", id="result-variant-none"),
    pytest.param(lambda e: EvalResult(True, "", 5), "reason", id="result-reason-int"),
]


@pytest.mark.parametrize(("call", "name"), TYPE_ERRORS)
def test_wrong_type_is_a_type_error_naming_the_argument(answering, call, name):
    with pytest.raises(TypeError) as excinfo:
        call(answering)
    assert name in error_text(excinfo.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: FlagConfig(key=""), 'flag at index 0, field "key": must not be empty', id="empty-key"),
        pytest.param(
            lambda: FlagConfig("k", percentage=math.nan), 'flag "k", field "percentage": ', id="nan"
        ),  # the value's spelling: see test_flag_config_and_dicts_reject_a_bad_value_alike
        pytest.param(
            lambda: FlagConfig("k", percentage=-math.inf),
            'flag "k", field "percentage": -inf is not a finite number',
            id="inf",
        ),
        pytest.param(
            lambda: FlagConfig("k", variants={"a": -1}),
            'flag "k", field "variants.a": a weight must be >= 0, got -1',
            id="neg",
        ),
        pytest.param(
            lambda: FlagConfig("k", variants={"a": math.inf}),
            'flag "k", field "variants.a": inf is not a finite number',
            id="w-inf",
        ),
        pytest.param(lambda: EvalResult(True, "", "bogus"), "unknown reason", id="reason"),
    ],
)
def test_bad_values_are_value_errors(answering, call, message):
    with pytest.raises(ValueError, match=re.escape(message)) as excinfo:
        call()
    if isinstance(excinfo.value, ConfigError):
        assert str(excinfo.value).startswith("invalid flag document: ")


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        pytest.param("percentage", math.nan, "flags[0].percentage", id="nan-percentage"),
        pytest.param("percentage", math.inf, "flags[0].percentage", id="inf-percentage"),
        pytest.param("variants", {"a": -1}, "flags[0].variants.a", id="negative-weight"),
        pytest.param("variants", {"a": "x"}, "flags[0].variants.a", id="string-weight"),
        pytest.param("variants", {"a": math.nan}, "flags[0].variants.a", id="nan-weight"),
    ],
)
def test_flag_config_and_dicts_reject_a_bad_value_alike(answering, field, value, path):
    # Every route applies the same rules (docs/spec.md §6): FlagConfig(...) and update([dict]) give the
    # same error, class, path and message.
    with pytest.raises(ConfigError) as from_dict:
        answering.update([{"key": "k", "enabled": True, field: value}])
    with pytest.raises(ConfigError) as from_config:
        FlagConfig("k", **{field: value})
    config_error, dict_error = from_config.value, from_dict.value
    assert type(config_error) is type(dict_error)
    assert (config_error.flag, config_error.path) == (dict_error.flag, dict_error.path) == ("k", path)
    assert str(config_error) == str(dict_error)


@pytest.mark.parametrize(
    ("flag", "path", "message"),
    [
        pytest.param({"variants": {"a": "x"}}, "flags[0].variants.a", "expected a number, got a string", id="weight"),
        pytest.param({"percentage": "50"}, "flags[0].percentage", "expected a number, got a string", id="percentage"),
        pytest.param({"enabled": 1}, "flags[0].enabled", "expected a bool, got a number", id="enabled"),
        pytest.param({"rules": [{"priority": "1"}]}, "flags[0].rules[0].priority", "expected an integer", id="prio"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_config_type_error(answering, flag, path, message):
    # ConfigTypeError is both a ConfigError (so a ValueError) and a TypeError.
    with pytest.raises(ConfigTypeError) as excinfo:
        answering.update([{"key": "k", "enabled": True, **flag}])
    error = excinfo.value
    assert isinstance(error, ConfigError)
    assert isinstance(error, ValueError)
    assert isinstance(error, TypeError)
    assert (error.flag, error.path) == ("k", path)
    assert message in str(error)


def test_a_bad_value_of_the_right_type_is_not_a_type_error(answering):
    for flag in ({"percentage": math.nan}, {"variants": {"a": -1}}, {"key": ""}):
        with pytest.raises(ConfigError) as excinfo:
            answering.update([{"key": "k", "enabled": True, **flag}])
        assert not isinstance(excinfo.value, TypeError), (flag, excinfo.value)


def test_list_properties_are_allowed():
    # docs/spec.md §4: a list or tuple of scalars is a list property, each element turned into text.
    ctx = EvalContext("u", properties={"groups": ["staff", "beta"], "ids": (1, 2.5, True), "none": []})
    assert ctx.properties == {"groups": ["staff", "beta"], "ids": ["1", "2.5", "true"], "none": []}
    evaluator = FlagEvaluator(
        [
            {
                "key": "k",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "groups", "operator": "in", "values": ["beta"]}], "variant": "b"}
                ],
            }
        ]
    )
    assert evaluator.evaluate("k", ctx) == EvalResult(True, "b", "rule_match")
    assert evaluator.evaluate("k", {"user_id": "u", "properties": {"groups": ["beta"]}}) == EvalResult(
        True, "b", "rule_match"
    )


def test_priority_out_of_range_is_an_overflow_error(answering):
    with pytest.raises(OverflowError):
        Rule(priority=2**70)


@pytest.mark.parametrize(
    ("flag", "path", "value_text"),
    [
        pytest.param({"percentage": math.nan}, "flags[0].percentage", "nan", id="nan-percentage"),
        pytest.param({"percentage": math.inf}, "flags[0].percentage", "inf", id="inf-percentage"),
        pytest.param({"percentage": -math.inf}, "flags[0].percentage", "-inf", id="minus-inf-percentage"),
        pytest.param({"variants": {"a": 1, "b": math.nan}}, "flags[0].variants.b", "nan", id="nan-weight"),
        pytest.param(
            {"rules": [{"conditions": [{"attribute": "a", "operator": "in", "values": ["x", math.inf]}]}]},
            "flags[0].rules[0].conditions[0].values[1]",
            "inf",
            id="inf-condition-value",
        ),
    ],
)
def test_non_finite_numbers_in_dicts_are_config_errors(answering, flag, path, value_text):
    with pytest.raises(ConfigError) as excinfo:
        answering.update([{"key": "k", "enabled": True, **flag}])
    error = excinfo.value
    assert (error.flag, error.path) == ("k", path)
    field = path.split(".", 1)[1]
    assert str(error) == f'invalid flag document: flag "k", field "{field}": {value_text} is not a finite number'


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def test_deeply_nested_dict_is_a_clear_error(answering):
    with pytest.raises(ConfigError, match="nested too deeply") as excinfo:
        answering.update([{"key": "k", "enabled": True, "extra": nested(10_000)}])
    assert excinfo.value.flag == "k"
    assert excinfo.value.path.startswith("flags[0].extra.x.x")
    # Inside a rule, too, and through from_dict.
    with pytest.raises(ConfigError, match="nested too deeply"):
        answering.update([{"key": "k", "enabled": True, "rules": [{"conditions": [nested(200)]}]}])
    with pytest.raises(ConfigError, match="nested too deeply"):
        FlagConfig.from_dict({"key": "k", "enabled": True, "deep": nested(200)})


def test_recursive_list_is_a_clear_error(answering):
    loop: list = []
    loop.append(loop)
    with pytest.raises(ConfigError, match="nested too deeply"):
        answering.update([{"key": "k", "enabled": True, "rules": loop}])


@pytest.mark.parametrize("text", ["[" * 100_000, '{"flags": ' * 50_000])
def test_deeply_nested_json_is_a_clear_error(answering, text):
    with pytest.raises(ConfigError, match="nested 128 or more levels deep"):
        answering.update_json(text)


def test_deep_nesting_inside_an_unknown_field_is_rejected_too(answering):
    # An unknown field is still read (it warns, docs/spec.md §1), so its depth counts like any other.
    text = '[{"key": "k", "enabled": true, "x": ' + "[" * 10_000 + "]" * 10_000 + "}]"
    with pytest.raises(ConfigError, match="nested 128 or more levels deep") as excinfo:
        answering.update_json(text)
    assert str(excinfo.value).startswith("invalid flag document: ")
    # The same for an extension field, which is otherwise ignored without a warning.
    with pytest.raises(ConfigError, match="nested 128 or more levels deep"):
        answering.update_json(text.replace('"x"', '"x-deep"'))


def json_nested(levels: int) -> str:
    """A document whose deepest value is `levels` arrays and objects deep, counting the top-level array."""
    inner = levels - 2  # the top-level array and the flag object
    return '[{"key": "k", "enabled": true, "x-deep": ' + "[" * inner + "]" * inner + "}]"


def test_the_json_nesting_limit_is_127_levels(answering):
    evaluator = FlagEvaluator()
    evaluator.update_json(json_nested(127))
    assert evaluator.evaluate("k", EvalContext("u")) == EvalResult(True, "", "default")
    with pytest.raises(ConfigError, match="nested 128 or more levels deep"):
        answering.update_json(json_nested(128))


def test_dicts_nest_as_deep_as_json(answering):
    # Every route applies the same rules (docs/spec.md §6): a value that loads from JSON loads from the
    # same Python objects.
    flags = [{"key": "k", "enabled": True, "default_variant": "a", "values": {"a": nested(60)}}]
    from_json = FlagEvaluator()
    from_json.update_json(json.dumps(flags))
    assert from_json.get_value("k", EvalContext("u")) == nested(60)
    from_dicts = FlagEvaluator(flags)
    assert from_dicts.get_value("k", EvalContext("u")) == nested(60)


def test_moderate_nesting_in_unknown_fields_is_fine(answering):
    evaluator = FlagEvaluator([{"key": "k", "enabled": True, "meta": nested(20)}])
    assert evaluator.evaluate("k", EvalContext("u")) == EvalResult(True, "", "default")
    # It loads with an unknown-field warning at its path; an x- field loads silently.
    [warning] = evaluator.warnings
    assert isinstance(warning, ConfigWarning)
    assert (warning.flag, warning.path, warning.message) == ("k", "flags[0].meta", "unknown field")
    evaluator.update([{"key": "k", "enabled": True, "x-meta": nested(20)}])
    assert evaluator.warnings == []


def test_text_that_is_not_utf8_is_a_config_error(answering):
    with pytest.raises(ConfigError, match="not valid JSON"):
        answering.update_json(b'[{"key": "\xff", "enabled": true}]')
