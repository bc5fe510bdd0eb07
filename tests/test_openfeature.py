"""The OpenFeature provider (docs/spec.md §9), driven through the real openfeature-sdk client API, with
real flag sources (a `FlagFileWatcher` on a temp file, a `FlagSyncClient` against a loopback server)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("openfeature", reason="needs the openfeature extra (openfeature-sdk)")

from ferroflag import EvalContext, FlagEvaluator, FlagFileWatcher, FlagSyncClient
from ferroflag.openfeature import REASON_METADATA_KEY, FerroflagProvider, to_eval_context
from ferroflag.testing import TestData, bind, bound_evaluator
from flag_server import FlagServer, status, wait_until
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationOptions, Reason
from openfeature.hook import Hook
from openfeature.provider import ProviderStatus

WAIT = 5.0  # every wait in this file is bounded by this many seconds


@pytest.fixture(autouse=True)
def clean_api():
    yield
    api.shutdown()  # providers, hooks, API context and handlers back to the SDK's defaults


def client_for(evaluator_or_provider, domain="test"):
    provider = (
        evaluator_or_provider
        if isinstance(evaluator_or_provider, FerroflagProvider)
        else FerroflagProvider(evaluator_or_provider)
    )
    api.set_provider_and_wait(provider, domain=domain)
    return api.get_client(domain)


def users_with(evaluator, key, reason, count=1):
    """User ids for which `key` answers with `reason` (searched deterministically)."""
    found = [
        user
        for user in (f"user-{i}" for i in range(2000))
        if evaluator.evaluate(key, EvalContext(user)).reason == reason
    ][:count]
    assert len(found) == count, f"no user gets {reason} for {key}"
    return found


class Events:
    """Records every provider event the client's handlers see, in arrival order."""

    def __init__(self, client):
        self.seen = []
        self._lock = threading.Lock()
        for event in ProviderEvent:
            client.add_handler(event, self._handler(event))

    def _handler(self, event):
        def handle(details):
            with self._lock:
                self.seen.append((event, details))

        return handle

    def of(self, event):
        with self._lock:
            return [details for e, details in self.seen if e is event]

    def wait(self, event, count=1):
        wait_until(lambda: len(self.of(event)) >= count, WAIT, f"{count} {event.name} event(s)")
        return self.of(event)


def write_atomically(path: Path, document) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(document if isinstance(document, str) else json.dumps(document))
    os.replace(tmp, path)


# --- values: every type, zero values, off variants (docs/spec.md §2.2, §9) -------------------------------


def valued(key, value, **more):
    return {"key": key, "enabled": True, "default_variant": "v", "values": {"v": value}, **more}


TYPED = [
    valued("bool-true", True),
    valued("bool-false", False),
    valued("string", "Buy now"),
    valued("string-empty", ""),
    valued("int", 50),
    valued("int-zero", 0),
    valued("int-negative", -3),
    valued("float", 0.15),
    valued("float-zero", 0.0),
    valued("float-whole", 5.0),
    valued("object", {"max_items": 10}),
    valued("object-empty", {}),
    valued("array", [1, "a"]),
    valued("array-empty", []),
    valued("null", None),
    # The answer's variant has no entry in `values` (loads with a warning).
    {"key": "no-entry", "enabled": True, "default_variant": "v", "values": {"other": 1}},
    {"key": "plain", "enabled": True},
    {"key": "plain-variant", "enabled": True, "default_variant": "blue"},
    {"key": "plain-off", "enabled": False},
    {"key": "plain-off-variant", "enabled": False, "default_variant": "blue", "off_variant": "legacy"},
    # Off answers carry the off variant's value: disabled, no_match, percentage_excluded, prerequisite_failed.
    {
        "key": "off-true",
        "enabled": False,
        "default_variant": "on",
        "off_variant": "off",
        "values": {"on": False, "off": True},
    },
]
OFF_VALUES = {
    "string": ("Buy now", ""),
    "int": (50, 0),
    "float": (0.15, 0.0),
    "object": ({"max_items": 50}, {}),
    "array": ([1, 2], []),
    "bool": (True, False),
}
for _name, (_on, _off) in OFF_VALUES.items():
    _values = {"on": _on, "off": _off}
    TYPED += [
        {
            "key": f"{_name}-disabled",
            "enabled": False,
            "default_variant": "on",
            "off_variant": "off",
            "values": _values,
        },
        {
            "key": f"{_name}-no-match",
            "enabled": True,
            "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["team"]}], "variant": "on"}],
            "off_variant": "off",
            "values": _values,
        },
        {
            "key": f"{_name}-gated",
            "enabled": True,
            "default_variant": "on",
            "prerequisites": [{"key": "plain-off"}],
            "off_variant": "off",
            "values": _values,
        },
        {
            "key": f"{_name}-rollout",
            "enabled": True,
            "percentage": 50,
            "default_variant": "on",
            "off_variant": "off",
            "values": _values,
        },
    ]


@pytest.fixture
def typed_evaluator():
    return FlagEvaluator(TYPED)


@pytest.fixture
def typed(typed_evaluator):
    return client_for(typed_evaluator, "typed")


@pytest.mark.parametrize(
    ("method", "key", "default", "value", "variant"),
    [
        ("boolean", "bool-true", False, True, "v"),
        ("boolean", "bool-false", True, False, "v"),  # a zero value, not the default
        ("boolean", "plain", False, True, None),  # no values: `enabled`
        ("boolean", "plain-variant", False, True, "blue"),
        ("string", "string", "x", "Buy now", "v"),
        ("string", "string-empty", "x", "", "v"),
        ("string", "plain-variant", "x", "blue", "blue"),  # no values: the variant
        ("integer", "int", 1, 50, "v"),
        ("integer", "int-zero", 1, 0, "v"),
        ("integer", "int-negative", 1, -3, "v"),
        ("float", "float", 1.0, 0.15, "v"),
        ("float", "float-zero", 1.0, 0.0, "v"),
        ("float", "float-whole", 1.0, 5.0, "v"),
        ("object", "object", {"a": 1}, {"max_items": 10}, "v"),
        ("object", "object-empty", {"a": 1}, {}, "v"),
        ("object", "array", {"a": 1}, [1, "a"], "v"),  # a JSON array is an object value
        ("object", "array-empty", {"a": 1}, [], "v"),
    ],
)
def test_values_resolve_as_their_type(typed, method, key, default, value, variant):
    details = getattr(typed, f"get_{method}_details")(key, default)
    assert (details.value, details.reason, details.variant, details.error_code) == (value, Reason.STATIC, variant, None)
    assert type(details.value) is type(value)
    assert details.error_message is None


def test_an_integer_is_a_valid_float_and_comes_back_as_one(typed):
    details = typed.get_float_details("int", 1.5)
    assert (details.value, details.error_code) == (50.0, None)
    assert type(details.value) is float
    zero = typed.get_float_details("int-zero", 1.5)
    assert (zero.value, type(zero.value), zero.error_code) == (0.0, float, None)


def test_object_values_are_the_callers_own(typed):
    first = typed.get_object_value("object", {})
    first["max_items"] = 999
    assert typed.get_object_value("object", {}) == {"max_items": 10}


@pytest.mark.parametrize(
    ("method", "key", "default"),
    [
        ("boolean", "string", False),  # a string flag asked as boolean
        ("boolean", "string-empty", True),
        ("boolean", "int-zero", True),
        ("boolean", "object-empty", True),
        ("string", "bool-true", "x"),  # a boolean-valued flag asked as string
        ("string", "bool-false", "x"),
        ("string", "int", "x"),
        ("string", "array", "x"),
        ("integer", "bool-true", 3),  # a bool is not an integer
        ("integer", "bool-false", 3),
        ("integer", "float", 3),
        ("integer", "float-whole", 3),  # 5.0 is written as a float
        ("integer", "string", 3),
        ("integer", "array-empty", 3),
        ("float", "bool-true", 2.5),
        ("float", "string", 2.5),
        ("float", "object", 2.5),
        ("object", "int", {"a": [1]}),
        ("object", "string", {"a": [1]}),
        ("object", "bool-false", {"a": [1]}),
    ],
)
def test_a_value_of_another_type_is_type_mismatch_with_the_default(typed, method, key, default):
    details = getattr(typed, f"get_{method}_details")(key, default)
    assert (details.value, details.reason, details.error_code) == (default, Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert key in details.error_message
    assert method in details.error_message


@pytest.mark.parametrize(
    ("method", "default"),
    [("boolean", True), ("string", "dflt"), ("integer", 3), ("float", 2.5), ("object", {"a": [1]})],
)
@pytest.mark.parametrize("key", ["null", "no-entry"])
def test_no_value_gives_the_default_with_the_answers_reason(typed, method, default, key):
    details = getattr(typed, f"get_{method}_details")(key, default)
    assert (details.value, details.reason, details.variant, details.error_code) == (default, Reason.STATIC, "v", None)


@pytest.mark.parametrize(("method", "default"), [("integer", 3), ("float", 2.5), ("object", {"a": [1]})])
def test_a_flag_without_values_gives_the_default_for_value_types(typed, method, default):
    details = getattr(typed, f"get_{method}_details")("plain", default)
    assert (details.value, details.reason, details.error_code) == (default, Reason.STATIC, None)


def test_string_without_values_off_answers(typed):
    # The off variant is the answer's variant; "" gives the default, with the answer's reason.
    details = typed.get_string_details("plain-off", "fallback")
    assert (details.value, details.reason, details.variant, details.error_code) == (
        "fallback",
        Reason.DISABLED,
        None,
        None,
    )
    details = typed.get_string_details("plain-off-variant", "fallback")
    assert (details.value, details.reason, details.variant) == ("legacy", Reason.DISABLED, "legacy")
    details = typed.get_boolean_details("plain-off-variant", True)
    assert (details.value, details.reason, details.variant) == (False, Reason.DISABLED, "legacy")


def test_boolean_with_values_is_the_value_not_enabled(typed):
    details = typed.get_boolean_details("off-true", False)  # disabled, but its off value is True
    assert (details.value, details.reason, details.variant, details.error_code) == (True, Reason.DISABLED, "off", None)


@pytest.mark.parametrize("name", sorted(OFF_VALUES))
@pytest.mark.parametrize(
    ("suffix", "reason", "engine_reason"),
    [
        ("disabled", Reason.DISABLED, "disabled"),
        ("no-match", Reason.DEFAULT, "no_match"),
        ("gated", Reason.DEFAULT, "prerequisite_failed"),
        ("rollout", Reason.SPLIT, "percentage_excluded"),
    ],
)
def test_off_answers_serve_the_off_variants_value_even_a_zero_one(
    typed, typed_evaluator, name, suffix, reason, engine_reason
):
    key = f"{name}-{suffix}"
    method = {"string": "string", "int": "integer", "float": "float", "bool": "boolean"}.get(name, "object")
    default = {"string": "dflt", "integer": 99, "float": 9.5, "boolean": True}.get(method, {"dflt": True})
    resolve = getattr(typed, f"get_{method}_details")
    on, off = OFF_VALUES[name]
    (user,) = users_with(typed_evaluator, key, engine_reason)
    details = resolve(key, default, EvaluationContext(user))
    assert (details.value, details.reason, details.variant, details.error_code) == (off, reason, "off", None)
    assert type(details.value) is type(off)
    assert details.flag_metadata[REASON_METADATA_KEY] == engine_reason
    if suffix == "no-match":
        matched = resolve(key, default, EvaluationContext(user, {"plan": "team"}))
        assert (matched.value, matched.reason, matched.variant) == (on, Reason.TARGETING_MATCH, "on")
    if suffix == "rollout":
        (inside,) = users_with(typed_evaluator, key, "percentage")
        served = resolve(key, default, EvaluationContext(inside))
        assert (served.value, served.reason, served.variant) == (on, Reason.SPLIT, "on")


# --- reasons (docs/spec.md §9) -------------------------------------------------------------------------

TEAM = {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["team"]}]}
REASON_FLAGS = [
    {"key": "static", "enabled": True, "default_variant": "v"},
    {"key": "single-weight", "enabled": True, "variants": {"a": 1, "b": 0}},  # one positive weight: not a split
    {"key": "disabled", "enabled": False},
    {"key": "rules", "enabled": True, "rules": [{**TEAM, "variant": "team"}]},
    {"key": "rules-everyone", "enabled": True, "percentage": 100, "rules": [{**TEAM, "variant": "team"}]},
    {"key": "rule-split", "enabled": True, "rules": [{**TEAM, "variants": {"x": 1, "y": 1}}]},
    {"key": "rollout", "enabled": True, "percentage": 50},
    {"key": "split", "enabled": True, "variants": {"light": 1, "dark": 1}},
    {"key": "split-with-rules", "enabled": True, "percentage": 100, "rules": [TEAM], "variants": {"a": 1, "b": 3}},
    {"key": "gated", "enabled": True, "prerequisites": [{"key": "disabled"}]},
    {"key": "gated-ok", "enabled": True, "prerequisites": [{"key": "static", "variants": ["v"]}]},
]


@pytest.fixture
def reasons():
    evaluator = FlagEvaluator(REASON_FLAGS)
    return evaluator, client_for(evaluator, "reasons")


@pytest.mark.parametrize(
    ("key", "attributes", "engine_reason", "reason"),
    [
        ("static", {}, "default", Reason.STATIC),
        ("single-weight", {}, "default", Reason.STATIC),
        ("gated-ok", {}, "default", Reason.STATIC),
        ("disabled", {}, "disabled", Reason.DISABLED),
        ("rules", {"plan": "team"}, "rule_match", Reason.TARGETING_MATCH),
        ("rule-split", {"plan": "team"}, "rule_match", Reason.TARGETING_MATCH),
        ("rules", {"plan": "free"}, "no_match", Reason.DEFAULT),
        ("rules-everyone", {"plan": "free"}, "default", Reason.DEFAULT),  # default on a flag with rules
        ("split", {}, "default", Reason.SPLIT),  # default from a weighted pick
        ("split-with-rules", {"plan": "free"}, "default", Reason.SPLIT),
        ("split-with-rules", {"plan": "team"}, "rule_match", Reason.TARGETING_MATCH),
        ("gated", {}, "prerequisite_failed", Reason.DEFAULT),
    ],
)
@pytest.mark.parametrize("method", ["boolean", "string"])
def test_reason_mapping(reasons, method, key, attributes, engine_reason, reason):
    evaluator, client = reasons
    ctx = EvaluationContext("user-1", attributes)
    result = evaluator.evaluate(key, to_eval_context(ctx))
    details = getattr(client, f"get_{method}_details")(key, True if method == "boolean" else "dflt", ctx)
    assert details.flag_metadata[REASON_METADATA_KEY] == result.reason == engine_reason
    assert (details.reason, details.variant, details.error_code) == (reason, result.variant or None, None)
    expected = result.enabled if method == "boolean" else (result.variant or "dflt")
    assert details.value == expected


@pytest.mark.parametrize("engine_reason", ["percentage", "percentage_excluded"])
def test_rollout_reasons_are_split(reasons, engine_reason):
    evaluator, client = reasons
    for user in users_with(evaluator, "rollout", engine_reason, count=5):
        details = client.get_boolean_details("rollout", engine_reason != "percentage", EvaluationContext(user))
        assert (details.value, details.reason) == (engine_reason == "percentage", Reason.SPLIT)
        assert details.flag_metadata[REASON_METADATA_KEY] == engine_reason


def test_split_string_is_the_picked_variant(reasons):
    evaluator, client = reasons
    seen = set()
    for i in range(50):
        details = client.get_string_details("split", "x", EvaluationContext(f"user-{i}"))
        assert details.value == details.variant == evaluator.get_variant("split", EvalContext(f"user-{i}"))
        assert details.reason == Reason.SPLIT
        seen.add(details.value)
    assert seen == {"light", "dark"}


@pytest.mark.parametrize(
    ("method", "default"),
    [("boolean", True), ("string", "dflt"), ("integer", 7), ("float", 0.5), ("object", {"d": 1})],
)
def test_not_found_is_error_flag_not_found_with_the_default(reasons, method, default):
    _, client = reasons
    details = getattr(client, f"get_{method}_details")("nope", default)
    assert (details.value, details.reason, details.error_code) == (default, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    assert "nope" in details.error_message
    assert details.variant is None


# --- flag metadata ------------------------------------------------------------------------------------


def test_flag_metadata_is_the_flags_metadata_plus_ferroflags_reason():
    evaluator = FlagEvaluator()
    evaluator.update_json(
        '{"format": 2, "metadata": {"flagSetId": "web", "owner": "platform"}, "flags": ['
        '{"key": "k", "enabled": true, "metadata": {"owner": "payments", "expires": "2027-03-01", "tier": 2,'
        ' "ratio": 0.5, "critical": false}},'
        '{"key": "bare", "enabled": true},'
        '{"key": "clash", "enabled": true, "metadata": {"ferroflag.reason": "mine", "reason": "kept"}}]}'
    )
    client = client_for(evaluator, "meta")
    assert client.get_boolean_details("k", False).flag_metadata == {
        "owner": "payments",  # the flag's, not the document's (docs/spec.md §9)
        "expires": "2027-03-01",
        "tier": 2,
        "ratio": 0.5,
        "critical": False,
        REASON_METADATA_KEY: "default",
    }
    assert client.get_string_details("bare", "x").flag_metadata == {REASON_METADATA_KEY: "default"}
    # ferroflag's reason wins over a flag metadata entry of the same name; other keys stay.
    assert client.get_boolean_details("clash", False).flag_metadata == {
        REASON_METADATA_KEY: "default",
        "reason": "kept",
    }
    mismatch = client.get_integer_details("k", 1)
    assert mismatch.error_code is None  # no values: the default, no error
    # Changing the returned metadata changes nothing later.
    details = client.get_boolean_details("k", False)
    details.flag_metadata["owner"] = "someone"  # type: ignore[index]
    assert client.get_boolean_details("k", False).flag_metadata["owner"] == "payments"


# --- context mapping ----------------------------------------------------------------------------------


def test_to_eval_context_fields_properties_and_conversion():
    aware = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 5, 1, 12, 0, 30, 250000)
    ctx = to_eval_context(
        EvaluationContext(
            "u1",
            {
                "email": "a@example.com",
                "plan": 3,
                "country": ["NZ", "AU"],  # a field holds one text: a list there is left out
                "beta": True,
                "off": False,
                "age": 30,
                "score": 1.5,
                "signup": aware,
                "local": naive,
                "groups": ["staff", "beta"],
                "ids": (1, 2.5, True),
                "seen": [aware],
                "empty": [],
                "gone": None,
                "nested": {"x": 1},
                "mixed": ["a", {"x": 1}],
                "holes": ["a", None],
                "user_id": "ignored-with-targeting-key",
            },
        )
    )
    assert (ctx.user_id, ctx.email, ctx.plan, ctx.country) == ("u1", "a@example.com", "3", "")
    assert ctx.properties == {
        "beta": "true",
        "off": "false",
        "age": "30",
        "score": "1.5",
        "signup": "2024-05-01T12:00:00+02:00",  # RFC 3339 with the offset
        "local": "2024-05-01T12:00:30.250000",  # naive: ISO 8601 without one
        "groups": ["staff", "beta"],  # lists and tuples of scalars are list attributes (docs/spec.md §4)
        "ids": ["1", "2.5", "true"],
        "seen": ["2024-05-01T12:00:00+02:00"],
        "empty": [],
    }
    assert "gone" not in ctx.properties  # None: absent


def test_to_eval_context_user_id_fallback_and_empty():
    assert to_eval_context(None) == EvalContext("")
    assert to_eval_context(EvaluationContext()) == EvalContext("")
    assert to_eval_context(EvaluationContext(attributes={"user_id": 42})).user_id == "42"
    assert to_eval_context(EvaluationContext("", {"user_id": "u7"})).user_id == "u7"
    assert to_eval_context(EvaluationContext(attributes={"user_id": ["a"]})).user_id == ""


def test_list_and_datetime_attributes_drive_rules():
    evaluator = FlagEvaluator(
        [
            {
                "key": "beta",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "groups", "operator": "in", "values": ["beta"]}], "variant": "b"}
                ],
            },
            {
                "key": "not-staff",
                "enabled": True,
                "rules": [{"conditions": [{"attribute": "groups", "operator": "not_in", "values": ["staff"]}]}],
            },
            {
                "key": "late",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "signup", "operator": "after", "values": ["2026-01-01T00:00:00Z"]}]}
                ],
            },
        ]
    )
    client = client_for(evaluator)
    assert client.get_string_value("beta", "x", EvaluationContext("u", {"groups": ["mobile", "beta"]})) == "b"
    assert client.get_string_value("beta", "x", EvaluationContext("u", {"groups": ("mobile",)})) == "x"
    assert client.get_boolean_value("not-staff", False, EvaluationContext("u", {"groups": ["beta"]})) is True
    assert client.get_boolean_value("not-staff", True, EvaluationContext("u", {"groups": ["beta", "staff"]})) is False
    # 2025-12-31T23:30:00-01:00 is 00:30 UTC on 1 January: after, thanks to the offset.
    evening = datetime(2025, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1)))
    assert client.get_boolean_value("late", False, EvaluationContext("u", {"signup": evening})) is True
    before = datetime(2025, 12, 31, 23, 30, tzinfo=timezone.utc)
    assert client.get_boolean_value("late", True, EvaluationContext("u", {"signup": before})) is False


def test_context_merging_api_client_invocation():
    evaluator = FlagEvaluator(
        [
            {
                "key": "targeted",
                "enabled": True,
                "rules": [
                    {
                        "conditions": [
                            {"attribute": "plan", "operator": "eq", "values": ["team"]},
                            {"attribute": "country", "operator": "eq", "values": ["NZ"]},
                            {"attribute": "user_id", "operator": "eq", "values": ["u1"]},
                        ],
                        "variant": "team-nz",
                    }
                ],
            }
        ]
    )
    client = client_for(evaluator)
    api.set_evaluation_context(EvaluationContext("api-user", {"plan": "team", "country": "DE"}))
    client.context = EvaluationContext(attributes={"country": "NZ"})
    details = client.get_boolean_details("targeted", False, EvaluationContext("u1"))
    assert (details.reason, details.variant) == (Reason.TARGETING_MATCH, "team-nz")
    assert client.get_boolean_details("targeted", False, EvaluationContext("u1", {"plan": "free"})).variant is None
    assert client.get_boolean_details("targeted", False).reason == Reason.DEFAULT  # api-user: no_match


# --- hooks, async --------------------------------------------------------------------------------------


class RecordingHook(Hook):
    def __init__(self):
        self.afters = []
        self.errors = []
        self.finals = []

    def after(self, hook_context, details, hints):
        self.afters.append((details.flag_key, details.value, details.reason))

    def error(self, hook_context, exception, hints):
        self.errors.append((hook_context.flag_key, type(exception).__name__))

    def finally_after(self, hook_context, details, hints):
        self.finals.append((details.flag_key, details.reason, details.error_code))


def test_hooks_see_values_and_errors(typed):
    hook = RecordingHook()
    options = FlagEvaluationOptions(hooks=[hook])
    typed.get_integer_value("int-zero", 5, None, options)
    typed.get_string_value("bool-true", "x", None, options)
    typed.get_object_value("nope", {}, None, options)
    assert hook.afters == [("int-zero", 0, Reason.STATIC)]
    assert hook.errors == [("bool-true", "TypeMismatchError"), ("nope", "FlagNotFoundError")]
    assert hook.finals == [
        ("int-zero", Reason.STATIC, None),
        ("bool-true", Reason.ERROR, ErrorCode.TYPE_MISMATCH),
        ("nope", Reason.ERROR, ErrorCode.FLAG_NOT_FOUND),
    ]


def test_async_client(typed):
    async def go():
        return await typed.get_float_details_async("float", 1.0), await typed.get_object_details_async("array", {})

    number, array = asyncio.run(go())
    assert (number.value, number.reason, array.value) == (0.15, Reason.STATIC, [1, "a"])


# --- construction and lifecycle ------------------------------------------------------------------------


def test_metadata_and_status():
    client = client_for(FlagEvaluator())
    assert api.get_provider_metadata("test").name == "ferroflag"
    assert client.get_provider_status() is ProviderStatus.READY


def test_provider_arguments_are_checked():
    with pytest.raises(TypeError, match="FlagEvaluator"):
        FerroflagProvider({"key": "x"})
    for bad in (0, -1, float("nan"), True):
        with pytest.raises(ValueError, match="status_interval"):
            FerroflagProvider(FlagEvaluator(), status_interval=bad)
    for bad in (-1, float("inf")):
        with pytest.raises(ValueError, match="ready_timeout"):
            FerroflagProvider(FlagEvaluator(), ready_timeout=bad)


def test_set_provider_without_waiting():
    api.set_provider(FerroflagProvider(FlagEvaluator([{"key": "on", "enabled": True}])), domain="async-init")
    client = api.get_client("async-init")
    wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, WAIT, "READY")
    assert client.get_boolean_value("on", False) is True


def test_without_a_source_no_thread_and_changes_arrive_from_the_change_listener():
    evaluator = FlagEvaluator([{"key": "a", "enabled": True}])
    provider = FerroflagProvider(evaluator)
    assert provider.check_status() is ProviderStatus.NOT_READY  # not initialized: nothing emitted
    client = client_for(provider)
    events = Events(client)
    assert not any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
    assert provider.check_status() is ProviderStatus.READY
    evaluator.update([{"key": "a", "enabled": False}, {"key": "b", "enabled": True}])
    # No check_status() call: the evaluator's change listener emits the event.
    (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["a", "b"]
    assert changed.metadata == {"version": evaluator.version}
    assert changed.provider_name == "ferroflag"


def test_changes_reach_handlers_without_a_status_thread_and_stop_at_shutdown(tmp_path):
    path = tmp_path / "flags.json"
    write_atomically(path, {"flags": [{"key": "a", "enabled": True}]})
    evaluator = FlagEvaluator()
    with FlagFileWatcher(evaluator, path, interval=0.02) as watcher:
        provider = FerroflagProvider(evaluator, sync=watcher, status_interval=None)
        client = client_for(provider, "listener-only")
        events = Events(client)
        write_atomically(path, {"flags": [{"key": "a", "enabled": False}]})
        (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert changed.flags_changed == ["a"]

        listener = evaluator.on_change(lambda keys: None)  # the evaluator's one listener
        assert provider._flags_changed in listener._callbacks
        provider.shutdown()
        assert provider._flags_changed not in listener._callbacks
        reported = listener.changes
        write_atomically(path, {"flags": [{"key": "a", "enabled": True}, {"key": "b", "enabled": True}]})
        wait_until(lambda: listener.changes > reported, WAIT, "the listener to see the change")
        time.sleep(0.05)  # the handlers would have run by now
        assert len(events.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)) == 1
    api.shutdown()


def test_first_flags_after_an_error_arriving_stale_are_not_a_change():
    """Nothing loaded and failing (ERROR), then flags while the source still fails (STALE): STALE
    announces them, even when the status check sees them before the change listener does, and even
    when a real change is published while that listener call is still held up;
    CONFIGURATION_CHANGED is for the real change only, with its own version."""
    status = {"ready": False, "last_error": "503 from the flag service"}
    evaluator = FlagEvaluator()
    entered, release = threading.Event(), threading.Event()

    def held_up(keys):
        entered.set()
        release.wait(WAIT)

    listener = evaluator.on_change(held_up)  # runs before the provider's callback
    provider = FerroflagProvider(
        evaluator, sync=SimpleNamespace(status=lambda: status), ready_timeout=0, status_interval=None
    )
    with pytest.raises(ProviderNotReadyError):
        api.set_provider_and_wait(provider, domain="error-then-stale")
    events = Events(api.get_client("error-then-stale"))
    evaluator.update([{"key": "a", "enabled": True}])  # the first flags; the listener is held up
    first = evaluator.version
    status = {"ready": True, "stale": True, "last_error": "503 from the flag service"}
    assert provider.check_status() is ProviderStatus.STALE
    assert entered.wait(WAIT)
    evaluator.update([{"key": "a", "enabled": False}])  # a real change, while the first call waits
    assert evaluator.version > first
    release.set()
    wait_until(lambda: listener.changes >= 2, WAIT, "the listener to report both snapshots")
    (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["a"]
    assert changed.metadata == {"version": evaluator.version}
    time.sleep(0.05)
    assert len(events.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)) == 1
    api.shutdown()


def test_shutdown_is_idempotent_and_the_provider_can_start_again(tmp_path):
    path = tmp_path / "flags.json"
    write_atomically(path, {"flags": [{"key": "a", "enabled": True}]})
    evaluator = FlagEvaluator()
    with FlagFileWatcher(evaluator, path, interval=0.02) as watcher:
        provider = FerroflagProvider(evaluator, sync=watcher, status_interval=0.02)
        client = client_for(provider, "again")
        assert any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
        provider.shutdown()
        provider.shutdown()
        assert not any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
        assert provider.check_status() is ProviderStatus.NOT_READY
        provider.initialize(EvaluationContext())  # reinitialized after shutdown: the thread is back
        assert any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
        assert provider.check_status() is ProviderStatus.READY
        assert client.get_boolean_value("a", False) is True
        api.shutdown()
        assert not any(t.name == "ferroflag-openfeature" for t in threading.enumerate())


def test_shutdown_aborts_a_pending_initialization():
    server = FlagServer()  # no document: every poll is a 404
    try:
        evaluator = FlagEvaluator()
        client = FlagSyncClient(evaluator, server.url, interval=0.05, backoff_cap=0.1, timeout=1)
        client.start(wait=0)
        provider = FerroflagProvider(evaluator, sync=client, ready_timeout=30)
        outcome = []

        def init():
            try:
                provider.initialize(EvaluationContext())
                outcome.append("ready")
            except ProviderNotReadyError as error:
                outcome.append(str(error))

        thread = threading.Thread(target=init)
        started = time.monotonic()
        thread.start()
        time.sleep(0.2)
        provider.shutdown()
        thread.join(WAIT)
        assert not thread.is_alive()
        assert time.monotonic() - started < 3
        assert len(outcome) == 1
        assert "shut down" in outcome[0]
        assert not any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
        client.stop()
    finally:
        server.close()


# --- a real FlagFileWatcher -----------------------------------------------------------------------------

FILE_FLAGS = {
    "format": 2,
    "segments": [
        {
            "key": "staff",
            "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@x.io"]}]}],
        },
        {"key": "insiders", "rules": [{"conditions": [{"operator": "in_segment", "values": ["staff"]}]}]},
    ],
    "flags": [
        {"key": "keep", "enabled": True},
        {"key": "change", "enabled": True, "default_variant": "v", "values": {"v": 1}},
        {"key": "remove", "enabled": True},
        {
            "key": "uses-insiders",
            "enabled": True,
            "rules": [{"conditions": [{"operator": "in_segment", "values": ["insiders"]}]}],
        },
        {"key": "needs-change", "enabled": True, "prerequisites": [{"key": "change"}]},
        {"key": "needs-needs-change", "enabled": True, "prerequisites": [{"key": "needs-change"}]},
    ],
}


@pytest.fixture
def watched(tmp_path):
    path = tmp_path / "flags.json"
    write_atomically(path, FILE_FLAGS)
    evaluator = FlagEvaluator()
    watcher = FlagFileWatcher(evaluator, path, interval=0.02)
    assert watcher.start(wait=WAIT)
    yield path, evaluator, watcher
    watcher.stop()


def test_file_watcher_rewrite_names_the_changed_flags(watched):
    path, evaluator, watcher = watched
    provider = FerroflagProvider(evaluator, sync=watcher, status_interval=0.02)
    client = client_for(provider, "file")
    events = Events(client)
    assert client.get_integer_value("change", 0) == 1

    document = json.loads(json.dumps(FILE_FLAGS))
    flags = {flag["key"]: flag for flag in document["flags"]}
    flags["change"]["values"] = {"v": 2}
    del flags["remove"]
    flags["added"] = {"key": "added", "enabled": False}
    document["flags"] = list(flags.values())
    write_atomically(path, document)

    (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    # `keep` and `uses-insiders` did not change; the prerequisite chain of `change` did.
    assert changed.flags_changed == ["added", "change", "needs-change", "needs-needs-change", "remove"]
    assert changed.metadata == {"version": evaluator.version}
    assert client.get_integer_value("change", 0) == 2
    assert client.get_boolean_details("remove", True).error_code == ErrorCode.FLAG_NOT_FOUND


def test_file_watcher_segment_change_names_the_flags_using_it(watched):
    path, evaluator, watcher = watched
    provider = FerroflagProvider(evaluator, sync=watcher, status_interval=0.02)
    events = Events(client_for(provider, "segments"))
    document = json.loads(json.dumps(FILE_FLAGS))
    document["segments"][0]["rules"][0]["conditions"][0]["values"] = ["@y.io"]  # staff, used through insiders
    write_atomically(path, document)
    (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["uses-insiders"]


def test_file_watcher_rewrite_without_changes_emits_nothing(watched):
    path, evaluator, watcher = watched
    provider = FerroflagProvider(evaluator, sync=watcher, status_interval=None)
    events = Events(client_for(provider, "same"))
    version = evaluator.version
    # Same flags, written differently (order of keys, spacing): a new snapshot, no changed flag.
    same = {"flags": FILE_FLAGS["flags"], "segments": FILE_FLAGS["segments"], "format": 2}
    write_atomically(path, json.dumps(same, indent=2, sort_keys=True))
    wait_until(lambda: evaluator.version > version, WAIT, "the rewrite to load")
    assert provider.check_status() is ProviderStatus.READY
    # Then a real change, to know the handlers have run for everything emitted before it.
    document = json.loads(json.dumps(FILE_FLAGS))
    document["flags"][0]["enabled"] = False
    write_atomically(path, document)
    wait_until(lambda: evaluator.version > version + 1, WAIT, "the change to load")
    provider.check_status()
    events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    time.sleep(0.1)
    assert [d.flags_changed for d in events.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)] == [["keep"]]


def test_file_watcher_broken_file_is_stale_then_ready_and_changed(watched):
    path, evaluator, watcher = watched
    provider = FerroflagProvider(evaluator, sync=watcher, status_interval=0.02)
    client = client_for(provider, "broken")
    events = Events(client)
    write_atomically(path, "{not json")
    (stale,) = events.wait(ProviderEvent.PROVIDER_STALE)
    assert "flags.json" in stale.message
    assert client.get_provider_status() is ProviderStatus.STALE
    assert client.get_integer_value("change", 0) == 1  # the last good flags are still served
    document = json.loads(json.dumps(FILE_FLAGS))
    document["flags"][1]["values"] = {"v": 3}
    write_atomically(path, document)
    (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["change", "needs-change", "needs-needs-change"]
    wait_until(lambda: client.get_provider_status() is ProviderStatus.READY, WAIT, "READY")
    assert len(events.of(ProviderEvent.PROVIDER_STALE)) == 1
    assert len(events.of(ProviderEvent.PROVIDER_READY)) == 2  # at registration, and after recovering


# --- a real FlagSyncClient against a loopback server -----------------------------------------------------

SYNC_DOC = {"flags": [{"key": "checkout", "enabled": True, "default_variant": "v2", "values": {"v2": {"max": 10}}}]}


def test_sync_client_down_at_start_then_ready_stale_recovered_and_changed():
    server = FlagServer()
    server.always(status(503))
    evaluator = FlagEvaluator()
    sync = FlagSyncClient(evaluator, server.url, interval=0.05, backoff_cap=0.1, timeout=1)
    try:
        sync.start(wait=0)
        provider = FerroflagProvider(evaluator, sync=sync, ready_timeout=0.3, status_interval=0.02)
        started = time.monotonic()
        with pytest.raises(ProviderNotReadyError, match="503"):
            api.set_provider_and_wait(provider, domain="synced")
        assert time.monotonic() - started < 3
        client = api.get_client("synced")
        assert client.get_provider_status() is ProviderStatus.ERROR  # retried by the client, so not FATAL
        details = client.get_object_details("checkout", {"max": 1})
        assert (details.value, details.error_code) == ({"max": 1}, ErrorCode.PROVIDER_NOT_READY)
        events = Events(client)

        server.set_document(SYNC_DOC, '"v1"')
        server.always(None)
        events.wait(ProviderEvent.PROVIDER_READY)  # the first flags: READY, not a change
        assert client.get_provider_status() is ProviderStatus.READY
        assert client.get_object_value("checkout", {}) == {"max": 10}
        assert client.get_boolean_details("nope", False).error_code == ErrorCode.FLAG_NOT_FOUND

        server.always(status(503))
        (stale,) = events.wait(ProviderEvent.PROVIDER_STALE)
        assert "503" in stale.message
        assert client.get_object_value("checkout", {}) == {"max": 10}  # last good flags

        server.set_document(
            {"flags": [*SYNC_DOC["flags"], {"key": "new-flag", "enabled": True}]},
            '"v2"',
        )
        server.always(None)
        (changed,) = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert changed.flags_changed == ["new-flag"]
        events.wait(ProviderEvent.PROVIDER_READY, count=2)
        assert client.get_provider_status() is ProviderStatus.READY
        assert client.get_boolean_value("new-flag", False) is True
        assert len(events.of(ProviderEvent.PROVIDER_STALE)) == 1
        # Only the SDK's immediate run of the handler added while in ERROR (spec 5.3.3): no new ERROR.
        assert [d.message for d in events.of(ProviderEvent.PROVIDER_ERROR)] == [None]
    finally:
        api.shutdown()
        sync.stop()
        server.close()


def test_sync_client_ready_at_start():
    with FlagServer(SYNC_DOC) as server:
        evaluator = FlagEvaluator()
        with FlagSyncClient(evaluator, server.url, interval=0.05, timeout=1) as sync:
            provider = FerroflagProvider(evaluator, sync=sync, status_interval=0.02)
            client = client_for(provider, "ready")
            events = Events(client)
            assert client.get_provider_status() is ProviderStatus.READY
            details = client.get_object_details("checkout", {})
            assert (details.value, details.reason, details.variant) == ({"max": 10}, Reason.STATIC, "v2")
            server.wait_for_requests(4, WAIT)  # 304s: no new snapshot, no event
            time.sleep(0.1)  # several more checks of the watcher thread
            assert events.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED) == []
            api.shutdown()


def test_sync_client_without_etag_sees_no_change_for_an_unchanged_document():
    """Issue 17 #5: the same body on every poll (no ETag) is not a configuration change."""
    with FlagServer(SYNC_DOC, None) as server:
        evaluator = FlagEvaluator()
        with FlagSyncClient(evaluator, server.url, interval=0.05, timeout=1) as sync:
            provider = FerroflagProvider(evaluator, sync=sync, status_interval=0.02)
            client = client_for(provider, "no-etag")
            events = Events(client)
            server.wait_for_requests(6, WAIT)
            time.sleep(0.1)  # several more checks of the watcher thread
            assert events.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED) == []
            assert evaluator.version == 1
            assert sync.status().not_modified >= 4
            api.shutdown()


def test_a_status_mapping_source_works_too():
    evaluator = FlagEvaluator([{"key": "a", "enabled": True}])

    class Source:
        def __init__(self):
            self.fields = {"ready": True, "last_error": None, "is_stale": False}

        def status(self):
            return dict(self.fields)

    source = Source()
    provider = FerroflagProvider(evaluator, sync=source, status_interval=None)
    client = client_for(provider, "mapping")
    events = Events(client)
    source.fields = {"ready": True, "last_error": "timeout", "is_stale": True}
    assert provider.check_status() is ProviderStatus.STALE
    assert provider.check_status() is ProviderStatus.STALE  # no second event for the same streak
    events.wait(ProviderEvent.PROVIDER_STALE)
    source.fields = {"ready": True, "last_error": "timeout", "consecutive_failures": 0}
    assert provider.check_status() is ProviderStatus.READY
    events.wait(ProviderEvent.PROVIDER_READY, count=2)
    assert len(events.of(ProviderEvent.PROVIDER_STALE)) == 1


# --- testing.bind() reaches the provider ----------------------------------------------------------------


def test_bind_a_provider_directly():
    app_flags = FlagEvaluator([{"key": "beta", "enabled": False}])
    provider = FerroflagProvider(app_flags)
    client = client_for(provider, "bound")
    assert client.get_boolean_value("beta", True) is False
    with TestData() as td:
        td.flag("beta").values({"on": 5}).variant("on")
        td.bind(provider)
        assert provider.current_evaluator is td.evaluator
        assert client.get_boolean_details("beta", False).error_code == ErrorCode.TYPE_MISMATCH
        assert client.get_integer_value("beta", 0) == 5
    assert provider.current_evaluator is app_flags
    assert client.get_boolean_value("beta", True) is False


def test_bind_an_app_reaches_the_provider_over_its_evaluator():
    app_flags = FlagEvaluator([{"key": "beta", "enabled": False}])
    other = FlagEvaluator([{"key": "beta", "enabled": False}])
    app = SimpleNamespace(state=SimpleNamespace(ferroflag=SimpleNamespace(evaluator=app_flags)))
    client = client_for(FerroflagProvider(app_flags), "app")
    unrelated = client_for(FerroflagProvider(other), "other")
    test_flags = FlagEvaluator([{"key": "beta", "enabled": True}])
    unbind = bind(app, test_flags)
    assert bound_evaluator(app) is test_flags
    assert bound_evaluator(app_flags) is test_flags
    assert client.get_boolean_value("beta", False) is True
    assert unrelated.get_boolean_value("beta", True) is False  # another evaluator's provider is untouched
    unbind()
    unbind()  # once only
    assert bound_evaluator(app) is None
    assert bound_evaluator(app_flags) is None
    assert client.get_boolean_value("beta", True) is False


def test_nested_bindings_undo_in_any_order():
    app_flags = FlagEvaluator([{"key": "k", "enabled": True, "default_variant": "app"}])
    client = client_for(FerroflagProvider(app_flags), "nested")
    first = FlagEvaluator([{"key": "k", "enabled": True, "default_variant": "first"}])
    second = FlagEvaluator([{"key": "k", "enabled": True, "default_variant": "second"}])
    undo_first = bind(app_flags, first)
    undo_second = bind(app_flags, second)
    assert client.get_string_value("k", "") == "second"
    undo_first()
    assert client.get_string_value("k", "") == "second"
    undo_second()
    assert client.get_string_value("k", "") == "app"


def test_bound_provider_with_a_source_that_loaded_nothing():
    # A bound test evaluator answers even while the app's source has nothing: FLAG_NOT_FOUND, not NOT_READY.
    evaluator = FlagEvaluator()
    source = SimpleNamespace(status=lambda: {"ready": False, "last_error": "down"})
    provider = FerroflagProvider(evaluator, sync=source, ready_timeout=0, status_interval=None)
    with pytest.raises(ProviderNotReadyError):
        api.set_provider_and_wait(provider, domain="unready")
    client = api.get_client("unready")
    assert client.get_boolean_details("a", False).error_code == ErrorCode.PROVIDER_NOT_READY
    with TestData() as td:
        td.flag("a").on()
        td.bind(provider)
        assert client.get_boolean_details("a", False).value is True
        assert client.get_boolean_details("b", False).error_code == ErrorCode.FLAG_NOT_FOUND


def test_fastapi_app_bound_with_the_pytest_fixture(ferroflag):
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from ferroflag.fastapi import setup

    app = FastAPI()
    setup(app, FlagEvaluator([{"key": "banner", "enabled": True, "default_variant": "v", "values": {"v": "prod"}}]))
    api.set_provider_and_wait(FerroflagProvider(app.state.ferroflag.evaluator), domain="web")

    @app.get("/banner")
    def banner() -> str:
        return api.get_client("web").get_string_value("banner", "none", EvaluationContext("u"))

    http = TestClient(app)
    assert http.get("/banner").json() == "prod"
    ferroflag.flag("banner").values({"t": "test"}).variant("t")
    ferroflag.bind(app)
    assert http.get("/banner").json() == "test"


def test_readme_openfeature_example_runs():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## OpenFeature\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md (OpenFeature)", "exec"), {})
