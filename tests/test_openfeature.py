"""The OpenFeature provider, driven through the real openfeature-sdk client API."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

import pytest

pytest.importorskip("openfeature", reason="needs the openfeature extra (openfeature-sdk)")

from ferroflag import EvalContext, FlagEvaluator
from ferroflag.openfeature import FerroflagProvider, to_eval_context
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationOptions, Reason
from openfeature.hook import Hook
from openfeature.provider import ProviderStatus

FLAGS = [
    {"key": "static-on", "enabled": True},
    {"key": "disabled", "enabled": False, "default_variant": "never"},
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
            },
            {"conditions": [{"attribute": "beta", "operator": "eq", "values": ["true"]}], "variant": "beta"},
            {"conditions": [{"attribute": "age", "operator": "gte", "values": ["18"]}], "variant": "adult"},
        ],
    },
    {"key": "rollout", "enabled": True, "percentage": 50},
    {"key": "theme", "enabled": True, "variants": {"light": 1, "dark": 1}},
    {"key": "fixed-variant", "enabled": True, "default_variant": "v1"},
]


@pytest.fixture
def evaluator():
    return FlagEvaluator(FLAGS)


@pytest.fixture(autouse=True)
def clean_api():
    yield
    api.shutdown()  # providers, hooks, API context and handlers back to the SDK's defaults


@pytest.fixture
def client(evaluator):
    api.set_provider_and_wait(FerroflagProvider(evaluator))
    return api.get_client()


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


class RecordingHook(Hook):
    def __init__(self):
        self.afters = []
        self.errors = []
        self.finals = []
        self.contexts = []

    def before(self, hook_context, hints):
        self.contexts.append(hook_context.evaluation_context)

    def after(self, hook_context, details, hints):
        self.afters.append((details.flag_key, details.reason, details.variant))

    def error(self, hook_context, exception, hints):
        self.errors.append((hook_context.flag_key, type(exception).__name__))

    def finally_after(self, hook_context, details, hints):
        self.finals.append((details.flag_key, details.reason, details.error_code))


# --- resolution ---------------------------------------------------------------------------------


def test_metadata(client):
    assert api.get_provider_metadata().name == "ferroflag"
    assert client.get_provider_status() is ProviderStatus.READY


def test_boolean_static(client):
    details = client.get_boolean_details("static-on", False)
    assert (details.value, details.reason, details.variant, details.error_code) == (True, Reason.STATIC, None, None)
    assert details.flag_metadata == {"reason": "default"}


def test_boolean_disabled_is_false_not_the_default(client):
    details = client.get_boolean_details("disabled", True)
    assert (details.value, details.reason, details.error_code) == (False, Reason.DISABLED, None)


def test_boolean_targeting_match_reports_variant(client):
    details = client.get_boolean_details("targeted", False, EvaluationContext("u9", {"beta": True}))
    assert (details.value, details.reason, details.variant) == (True, Reason.TARGETING_MATCH, "beta")
    assert details.flag_metadata == {"reason": "rule_match"}


def test_boolean_rules_without_match_is_default(client):
    details = client.get_boolean_details("targeted", False, EvaluationContext("u9"))
    assert (details.value, details.reason) == (True, Reason.DEFAULT)


def test_boolean_rollout_is_split_both_ways(client, evaluator):
    seen = set()
    for i in range(200):
        user = f"user-{i}"
        details = client.get_boolean_details("rollout", True, EvaluationContext(user))
        assert details.reason == Reason.SPLIT
        assert details.value is evaluator.is_enabled("rollout", EvalContext(user))
        seen.add((details.value, details.flag_metadata["reason"]))
    assert seen == {(True, "percentage"), (False, "percentage_excluded")}


def test_string_from_variant(client, evaluator):
    for i in range(50):
        user = f"user-{i}"
        details = client.get_string_details("theme", "default", EvaluationContext(user))
        assert details.value == evaluator.get_variant("theme", EvalContext(user))
        assert details.value in {"light", "dark"}
        assert (details.reason, details.variant) == (Reason.SPLIT, details.value)
    assert client.get_string_value("fixed-variant", "x") == "v1"
    assert client.get_string_details("fixed-variant", "x").reason == Reason.STATIC


def test_string_default_when_off_or_no_variant(client):
    disabled = client.get_string_details("disabled", "fallback")
    assert (disabled.value, disabled.reason, disabled.error_code) == ("fallback", Reason.DISABLED, None)
    plain = client.get_string_details("static-on", "fallback")
    assert (plain.value, plain.reason, plain.variant) == ("fallback", Reason.STATIC, None)


def test_missing_flag_gives_default_and_flag_not_found(client):
    for details, default in [
        (client.get_boolean_details("nope", True), True),
        (client.get_string_details("nope", "dflt"), "dflt"),
        (client.get_integer_details("nope", 7), 7),
    ]:
        assert details.value == default
        assert details.reason == Reason.ERROR
        assert details.error_code == ErrorCode.FLAG_NOT_FOUND
        assert "nope" in details.error_message


@pytest.mark.parametrize(
    ("method", "default"),
    [("get_integer_details", 3), ("get_float_details", 2.5), ("get_object_details", {"a": [1]})],
)
def test_other_types_are_type_mismatch(client, method, default):
    details = getattr(client, method)("static-on", default)
    assert details.value == default
    assert details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_context_merging_api_client_invocation(client):
    api.set_evaluation_context(EvaluationContext("api-user", {"plan": "team", "country": "DE"}))
    client.context = EvaluationContext(attributes={"country": "NZ"})
    # API plan + client country + invocation targeting key → the three-condition rule.
    details = client.get_boolean_details("targeted", False, EvaluationContext("u1"))
    assert (details.reason, details.variant) == (Reason.TARGETING_MATCH, "team-nz")
    # The invocation overrides the API's plan; the API's targeting key applies when none is given.
    assert client.get_boolean_details("targeted", False, EvaluationContext("u1", {"plan": "free"})).variant is None
    assert client.get_boolean_details("targeted", False).reason == Reason.DEFAULT  # api-user does not match


def test_hooks_observe_reasons(client):
    api_hook, client_hook, invocation_hook = RecordingHook(), RecordingHook(), RecordingHook()
    api.add_hooks([api_hook])
    client.add_hooks([client_hook])
    options = FlagEvaluationOptions(hooks=[invocation_hook])
    client.get_boolean_value("targeted", False, EvaluationContext("u", {"age": 30}), options)
    client.get_boolean_value("disabled", False, None, options)
    client.get_boolean_value("nope", False, None, options)
    client.get_string_value("theme", "x", EvaluationContext("u"), options)
    client.get_integer_value("static-on", 1, None, options)
    for hook in (api_hook, client_hook, invocation_hook):
        assert hook.afters == [
            ("targeted", Reason.TARGETING_MATCH, "adult"),
            ("disabled", Reason.DISABLED, None),
            ("theme", Reason.SPLIT, hook.afters[2][2]),
        ]
        assert hook.afters[2][2] in {"light", "dark"}
        assert hook.contexts[0].targeting_key == "u"
        assert hook.contexts[0].attributes == {"age": 30}
        assert hook.errors == [("nope", "FlagNotFoundError"), ("static-on", "TypeMismatchError")]
        assert [(key, reason, code) for key, reason, code in hook.finals] == [
            ("targeted", Reason.TARGETING_MATCH, None),
            ("disabled", Reason.DISABLED, None),
            ("nope", Reason.ERROR, ErrorCode.FLAG_NOT_FOUND),
            ("theme", Reason.SPLIT, None),
            ("static-on", Reason.ERROR, ErrorCode.TYPE_MISMATCH),
        ]


def test_async_client(client):
    async def go():
        return await client.get_boolean_details_async("targeted", False, EvaluationContext("u", {"beta": "true"}))

    details = asyncio.run(go())
    assert (details.value, details.reason, details.variant) == (True, Reason.TARGETING_MATCH, "beta")


def test_set_provider_without_waiting(evaluator):
    api.set_provider(FerroflagProvider(evaluator), domain="async-init")
    client = api.get_client("async-init")
    wait_for(lambda: client.get_provider_status() is ProviderStatus.READY)
    assert client.get_boolean_value("static-on", False) is True
    assert api.get_client().get_boolean_details("static-on", False).reason == Reason.DEFAULT  # NoOp provider


def test_provider_needs_an_evaluator():
    with pytest.raises(TypeError, match="FlagEvaluator"):
        FerroflagProvider({"key": "x"})
    with pytest.raises(ValueError, match="status_interval"):
        FerroflagProvider(FlagEvaluator(), status_interval=0)


# --- context mapping -----------------------------------------------------------------------------


def test_to_eval_context_fields_properties_and_conversion():
    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    ctx = to_eval_context(
        EvaluationContext(
            "u1",
            {
                "email": "a@example.com",
                "plan": 3,
                "country": "NZ",
                "beta": True,
                "off": False,
                "age": 30,
                "score": 1.5,
                "signup": when,
                "tags": ["a", "b"],
                "nested": {"x": 1},
                "user_id": "ignored-with-targeting-key",
            },
        )
    )
    assert (ctx.user_id, ctx.email, ctx.plan, ctx.country) == ("u1", "a@example.com", "3", "NZ")
    assert ctx.properties == {
        "beta": "true",
        "off": "false",
        "age": "30",
        "score": "1.5",
        "signup": "2024-05-01T12:00:00+00:00",
    }


def test_to_eval_context_user_id_fallback_and_empty():
    assert to_eval_context(None) == EvalContext("")
    assert to_eval_context(EvaluationContext()) == EvalContext("")
    assert to_eval_context(EvaluationContext(attributes={"user_id": 42})).user_id == "42"


# --- sync status and events ---------------------------------------------------------------------


class FakeSync:
    """Stands in for FlagSyncClient: status() gives the fields the provider reads."""

    def __init__(self, evaluator, *, ready=False, last_error=None, consecutive_failures=0):
        self.evaluator = evaluator
        self.fields = {"ready": ready, "last_error": last_error, "consecutive_failures": consecutive_failures}
        self.calls = 0

    def status(self):
        self.calls += 1
        return dict(self.fields)

    def apply(self, flags):
        self.evaluator.update(flags)
        self.fields.update(ready=True, consecutive_failures=0)

    def fail(self, error):
        self.fields.update(last_error=error, consecutive_failures=self.fields["consecutive_failures"] + 1)


class Events:
    def __init__(self, client):
        self.seen = []
        self._lock = threading.Lock()
        for event in ProviderEvent:
            client.add_handler(event, self._handler(event))

    def _handler(self, event):
        def handle(details):
            with self._lock:
                self.seen.append((event, details.message, details.metadata.get("version")))

        return handle

    def wait(self, event, count=1):
        wait_for(lambda: sum(1 for e, _, _ in self.snapshot() if e is event) >= count)

    def snapshot(self):
        with self._lock:
            return list(self.seen)


def test_sync_ready_stale_recovered_and_changed():
    evaluator = FlagEvaluator()
    sync = FakeSync(evaluator)
    sync.apply(FLAGS)
    provider = FerroflagProvider(evaluator, sync=sync, status_interval=None)
    api.set_provider_and_wait(provider, domain="synced")
    client = api.get_client("synced")
    events = Events(client)
    events.wait(ProviderEvent.PROVIDER_READY)  # handlers added after READY run at once
    assert client.get_provider_status() is ProviderStatus.READY

    sync.fail("HTTP 503")
    assert provider.check_status() is ProviderStatus.STALE
    events.wait(ProviderEvent.PROVIDER_STALE)
    assert client.get_provider_status() is ProviderStatus.STALE
    assert client.get_boolean_value("static-on", False) is True  # the last good flags are still served
    assert provider.check_status() is ProviderStatus.STALE  # no second STALE event for the same streak

    sync.apply([{"key": "static-on", "enabled": False}])
    assert provider.check_status() is ProviderStatus.READY
    events.wait(ProviderEvent.PROVIDER_READY, count=2)
    events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert client.get_provider_status() is ProviderStatus.READY
    assert client.get_boolean_value("static-on", True) is False
    seen = events.snapshot()
    assert (ProviderEvent.PROVIDER_STALE, "HTTP 503", None) in seen
    assert (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, None, evaluator.version) in seen
    assert sum(1 for e, _, _ in seen if e is ProviderEvent.PROVIDER_STALE) == 1


def test_sync_not_ready_is_an_error_then_ready():
    evaluator = FlagEvaluator()
    sync = FakeSync(evaluator, last_error="connection refused", consecutive_failures=3)
    provider = FerroflagProvider(evaluator, sync=sync, ready_timeout=0.1, status_interval=None)
    started = time.monotonic()
    with pytest.raises(ProviderNotReadyError, match="connection refused"):
        api.set_provider_and_wait(provider, domain="down")
    assert time.monotonic() - started < 2
    client = api.get_client("down")
    assert client.get_provider_status() is ProviderStatus.ERROR  # retried by the sync client, so not FATAL
    details = client.get_boolean_details("static-on", True)
    assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)

    events = Events(client)
    sync.apply(FLAGS)
    assert provider.check_status() is ProviderStatus.READY
    events.wait(ProviderEvent.PROVIDER_READY)
    assert client.get_provider_status() is ProviderStatus.READY
    assert client.get_boolean_value("static-on", False) is True
    assert client.get_boolean_details("nope", False).error_code == ErrorCode.FLAG_NOT_FOUND


def test_sync_status_as_object_with_is_stale_method_and_wait_until_ready():
    evaluator = FlagEvaluator()

    class Status:
        def __init__(self, ready, stale):
            self.ready, self.last_error, self._stale = ready, ("timeout" if stale else None), stale

        def is_stale(self):
            return self._stale

    class Sync:
        def __init__(self):
            self.state = Status(False, False)
            self.waited = []

        def status(self):
            return self.state

        def wait_until_ready(self, timeout):
            self.waited.append(timeout)
            evaluator.update(FLAGS)
            self.state = Status(True, True)
            return True

    sync = Sync()
    provider = FerroflagProvider(evaluator, sync=sync, ready_timeout=3, status_interval=None)
    api.set_provider_and_wait(provider, domain="obj")
    assert sync.waited == [3]
    client = api.get_client("obj")
    assert provider.check_status() is ProviderStatus.STALE  # after the SDK's READY
    wait_for(lambda: client.get_provider_status() is ProviderStatus.STALE)


def test_watcher_thread_emits_and_stops_on_shutdown():
    evaluator = FlagEvaluator()
    sync = FakeSync(evaluator)
    sync.apply(FLAGS)
    provider = FerroflagProvider(evaluator, sync=sync, status_interval=0.01)
    api.set_provider_and_wait(provider, domain="watched")
    client = api.get_client("watched")
    assert any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
    sync.fail("HTTP 500")
    wait_for(lambda: client.get_provider_status() is ProviderStatus.STALE)
    sync.apply(FLAGS)
    wait_for(lambda: client.get_provider_status() is ProviderStatus.READY)
    api.shutdown()
    assert not any(t.name == "ferroflag-openfeature" for t in threading.enumerate())


def test_no_sync_no_thread(evaluator):
    before = {t.name for t in threading.enumerate()}
    provider = FerroflagProvider(evaluator)
    api.set_provider_and_wait(provider)
    assert provider.check_status() is ProviderStatus.READY
    assert {t.name for t in threading.enumerate()} - before <= {
        t.name for t in threading.enumerate() if t.name.startswith("openfeature")
    }
    assert not any(t.name == "ferroflag-openfeature" for t in threading.enumerate())
