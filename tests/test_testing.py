"""ferroflag.testing: the TestData builder, layering and restore, override_flag, and the adapter hooks."""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
import types
import unittest
from datetime import datetime, timezone

import ferroflag.testing
import pytest
from ferroflag import Condition, EvalContext, EvalResult, FlagConfig, FlagEvaluator, FlagFileWatcher
from ferroflag._binding import resolve
from ferroflag.testing import (
    TestData,  # imported into a test module on purpose: pytest must not try to collect it
    bind,
    bound_evaluator,
    current,
    declared_variants,
    flag_states,
    override_flag,
    with_now,
)

USERS = [EvalContext(f"user-{i}") for i in range(10_000)]


def ctx(user_id="u", **kw):
    return EvalContext(user_id, **kw)


def triple(result):
    # (enabled, variant, reason) as a tuple: a failed comparison then shows the three fields plainly.
    assert isinstance(result, EvalResult)
    return (result.enabled, result.variant, result.reason)


def dicts(evaluator):
    return [c.to_dict() for c in evaluator.configs()]


@pytest.fixture
def app_evaluator():
    return FlagEvaluator(
        [
            {"key": "existing", "enabled": True},
            {
                "key": "targeted",
                "enabled": True,
                # Everyone no rule takes gets the flag too (docs/spec.md §2 step 5).
                "percentage": 100,
                "rules": [
                    {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["team"]}], "variant": "t"}
                ],
                "variants": {"a": 1, "b": 1},
            },
        ]
    )


def test_not_collected_by_pytest():
    assert TestData.__test__ is False
    assert ferroflag.testing.__test__ is False


def test_new_flag_defaults_to_on_for_everyone_once_touched():
    td = TestData()
    assert triple(td.evaluator.evaluate("f", ctx())) == (False, "", "not_found")
    builder = td.flag("f")
    assert "f" not in td.evaluator  # a builder alone publishes nothing
    builder.on()
    assert triple(td.evaluator.evaluate("f", ctx())) == (True, "", "default")


def test_on_off_variant():
    td = TestData()
    td.flag("f").on()
    assert td.evaluator.is_enabled("f", ctx())
    td.flag("f").off()
    assert triple(td.evaluator.evaluate("f", ctx())) == (False, "", "disabled")
    td.flag("f").variant("v2")
    assert triple(td.evaluator.evaluate("f", ctx())) == (True, "v2", "default")
    td.flag("f").off()
    assert td.evaluator.evaluate("f", ctx()).reason == "disabled"
    td.flag("f").on()  # on() keeps the variant settings
    assert triple(td.evaluator.evaluate("f", ctx())) == (True, "v2", "default")


def test_on_for_user_ids_only_those_users():
    td = TestData()
    td.flag("beta").on_for(user_ids=["alice", 42])
    ev = td.evaluator
    assert triple(ev.evaluate("beta", ctx("alice"))) == (True, "", "rule_match")
    assert triple(ev.evaluate("beta", EvalContext(42))) == (True, "", "rule_match")
    # "Nobody else": a flag with rules and no rollout serves only their matches (docs/spec.md §2 step 5).
    assert triple(ev.evaluate("beta", ctx("bob"))) == (False, "", "no_match")
    assert ev.get_config("beta").percentage == 0
    assert sum(ev.is_enabled_many("beta", USERS)) == 0
    assert {ev.evaluate("beta", u).reason for u in USERS[:500]} == {"no_match"}


def test_on_for_attributes_and_variant():
    td = TestData()
    td.flag("f").on_for(plan=["enterprise", "team"], country="NZ", variant="v2")
    ev = td.evaluator
    assert triple(ev.evaluate("f", ctx(plan="team"))) == (True, "v2", "rule_match")
    assert triple(ev.evaluate("f", ctx(country="NZ"))) == (True, "v2", "rule_match")
    assert triple(ev.evaluate("f", ctx(plan="free", country="DE"))) == (False, "", "no_match")


def test_on_for_needs_targets():
    td = TestData()
    with pytest.raises(TypeError, match="needs user_ids"):
        td.flag("f").on_for()
    with pytest.raises(TypeError, match="not a str"):
        td.flag("f").on_for(user_ids="alice")


def test_rule_with_any_operator_and_bare_value():
    td = TestData()
    td.flag("f").rule("plan", "eq", "enterprise", variant="ent").rule("age", "gte", 18, variant="adult")
    ev = td.evaluator
    assert triple(ev.evaluate("f", ctx(plan="enterprise"))) == (True, "ent", "rule_match")
    assert triple(ev.evaluate("f", ctx(properties={"age": 30}))) == (True, "adult", "rule_match")
    assert triple(ev.evaluate("f", ctx(properties={"age": 12}))) == (False, "", "no_match")


def test_rule_priority():
    td = TestData()
    td.flag("f").rule("plan", "eq", "team", variant="low").rule("plan", "eq", "team", variant="high", priority=5)
    assert td.evaluator.get_variant("f", ctx(plan="team")) == "high"


def test_rules_keep_the_rest_when_the_flag_already_had_targeting(app_evaluator):
    with TestData(app_evaluator) as td:
        td.flag("targeted").rule("plan", "eq", "enterprise", variant="e")
        ev = td.evaluator
        assert ev.evaluate("targeted", ctx(plan="enterprise")).variant == "e"
        assert ev.evaluate("targeted", ctx(plan="team")).variant == "t"
        assert ev.is_enabled("targeted", ctx(plan="free"))  # still on for everyone else


def test_rollout_is_sticky_and_roughly_right():
    td = TestData()
    td.flag("f").rollout(25)
    quarter = td.evaluator.is_enabled_many("f", USERS)
    assert 2300 <= sum(quarter) <= 2700
    td.flag("f").rollout(50)
    half = td.evaluator.is_enabled_many("f", USERS)
    assert 4800 <= sum(half) <= 5200
    assert all(h for q, h in zip(quarter, half, strict=True) if q)  # raising keeps everyone who was in
    td.flag("f").rollout(0)
    assert sum(td.evaluator.is_enabled_many("f", USERS)) == 0
    td.flag("f").rollout(100)
    assert all(td.evaluator.is_enabled_many("f", USERS))


def test_rollout_with_targeting():
    td = TestData()
    td.flag("f").on_for(user_ids=["vip"]).rollout(50)
    assert td.evaluator.evaluate("f", ctx("vip")).reason == "rule_match"
    assert 4800 <= sum(td.evaluator.is_enabled_many("f", USERS)) <= 5200
    td.flag("f").rollout(100)
    assert triple(td.evaluator.evaluate("f", ctx("nobody-special"))) == (True, "", "default")
    td.flag("f").on()  # on() drops the targeting
    assert triple(td.evaluator.evaluate("f", ctx("vip"))) == (True, "", "default")


@pytest.mark.parametrize("bad", [-1, 101, float("nan"), float("inf")])
def test_rollout_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="between 0 and 100"):
        TestData().flag("f").rollout(bad)


def test_rollout_rejects_bool():
    with pytest.raises(TypeError):
        TestData().flag("f").rollout(True)


def test_rollout_zero_without_rules_is_off_for_everyone_and_rules_then_serve_only_their_matches():
    td = TestData()
    td.flag("f").rollout(0)
    assert not any(td.evaluator.is_enabled_many("f", USERS))
    td.flag("f").on_for(user_ids=["vip"])
    assert triple(td.evaluator.evaluate("f", ctx("vip"))) == (True, "", "rule_match")
    assert triple(td.evaluator.evaluate("f", ctx("someone"))) == (False, "", "no_match")


def test_split():
    td = TestData()
    td.flag("exp").split({"control": 50, "treatment": 50})
    variants = [td.evaluator.get_variant("exp", u) for u in USERS]
    assert 4700 <= variants.count("control") <= 5300
    assert variants.count("control") + variants.count("treatment") == len(USERS)


def test_set_all_kinds():
    td = TestData()
    td.set(
        {
            "on": True,
            "off": False,
            "theme": "dark",
            "cfg": FlagConfig("cfg", percentage=0, default_variant="x"),
            "raw": {"rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["t"]}]}]},
        }
    )
    ev = td.evaluator
    assert triple(ev.evaluate("on", ctx())) == (True, "", "default")
    assert ev.evaluate("off", ctx()).reason == "disabled"
    assert triple(ev.evaluate("theme", ctx())) == (True, "dark", "default")
    assert triple(ev.evaluate("cfg", ctx())) == (True, "x", "default")
    assert ev.evaluate("raw", ctx(plan="t")).reason == "rule_match"  # enabled defaults to true
    td.set({"on": None})
    assert "on" not in ev


def test_set_is_one_snapshot():
    td = TestData()
    before = td.evaluator.version
    td.set({f"f{i}": True for i in range(20)})
    assert td.evaluator.version == before + 1
    with td.batch():
        td.flag("a").on()
        td.flag("b").variant("x")
        td.flag("a").off()
        assert "a" not in td.evaluator  # nothing published inside the batch
    assert td.evaluator.version == before + 2
    assert td.evaluator.evaluate("a", ctx()).reason == "disabled"


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ({"f": 1}, TypeError),
        ({"f": ["x"]}, TypeError),
        ({"f": FlagConfig("g")}, ValueError),
        ({"f": {"key": "g"}}, ValueError),
        ({"f": {"enabled": "yes"}}, ValueError),  # ConfigError from the engine
        ([("f", True)], TypeError),
    ],
)
def test_set_rejects(flags, error):
    td = TestData()
    td.set({"kept": "v"})
    with pytest.raises(error):
        td.set({"before": True, **flags} if isinstance(flags, dict) else flags)
    assert td.evaluator.keys() == ["kept"]  # all or nothing
    assert td.config("before") is None


def test_layer_over_existing_evaluator_and_restore(app_evaluator):
    before = dicts(app_evaluator)
    with TestData(app_evaluator) as td:
        td.flag("existing").off()
        td.flag("brand-new").variant("v")
        assert app_evaluator.evaluate("existing", ctx()).reason == "disabled"
        assert app_evaluator.evaluate("targeted", ctx(plan="team")).variant == "t"  # untouched flags stay
        assert td.config("existing").enabled is False
    assert dicts(app_evaluator) == before
    assert app_evaluator.is_enabled("existing", ctx())
    assert "brand-new" not in app_evaluator


def test_builder_starts_from_current_definition(app_evaluator):
    with TestData(app_evaluator) as td:
        td.flag("targeted").off()
        config = td.config("targeted")
        assert config.variants == {"a": 1.0, "b": 1.0}
        assert len(config.rules) == 1


def test_unchanged_testdata_publishes_nothing(app_evaluator):
    version = app_evaluator.version
    with TestData(app_evaluator):
        pass
    assert app_evaluator.version == version


def test_delete_and_reset(app_evaluator):
    with TestData(app_evaluator) as td:
        td.delete("existing")
        assert app_evaluator.evaluate("existing", ctx()).reason == "not_found"
        assert app_evaluator.is_enabled("existing", ctx(), default=True)
        td.reset("existing")
        assert app_evaluator.is_enabled("existing", ctx())
        td.set({"existing": False, "targeted": False})
        td.reset()
        assert app_evaluator.is_enabled("existing", ctx())
        assert app_evaluator.is_enabled("targeted", ctx())


def test_restored_testdata_cannot_be_used():
    td = TestData()
    td.restore()
    td.restore()  # idempotent
    assert not td.active
    with pytest.raises(RuntimeError, match="restored"):
        td.flag("f").on()
    with pytest.raises(RuntimeError, match="restored"):
        td.set({"f": True})


def test_nested_layers_restore_in_any_order(app_evaluator):
    before = dicts(app_evaluator)
    outer = TestData(app_evaluator)
    inner = TestData(app_evaluator)
    outer.flag("existing").off()
    inner.flag("existing").variant("inner")
    inner.flag("other").on()
    assert app_evaluator.evaluate("existing", ctx()).variant == "inner"  # later layer wins
    # Each layer builds on what is below it, not on later layers.
    assert outer.config("existing").enabled is False
    assert outer.config("existing").default_variant == ""
    assert outer.config("other") is None
    assert inner.config("existing").default_variant == "inner"
    outer.restore()  # not LIFO
    assert app_evaluator.evaluate("existing", ctx()).variant == "inner"
    assert app_evaluator.is_enabled("other", ctx())
    inner.restore()
    assert dicts(app_evaluator) == before


def test_threads_with_their_own_evaluators_do_not_share_state():
    errors = []
    barrier = threading.Barrier(8)

    def worker(n):
        try:
            with TestData() as td:
                barrier.wait()
                for round_ in range(200):
                    td.set({"shared-key": f"t{n}-{round_}", f"only-{n}": bool(round_ % 2)})
                    result = td.evaluator.evaluate("shared-key", ctx())
                    assert triple(result) == (True, f"t{n}-{round_}", "default"), result
                    assert td.evaluator.keys() == ["shared-key", f"only-{n}"]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_threads_sharing_one_evaluator_restore_cleanly(app_evaluator):
    before = dicts(app_evaluator)
    datas = [TestData(app_evaluator) for _ in range(16)]
    errors = []

    def worker(n, td):
        try:
            for _ in range(50):
                td.flag(f"k{n}").variant(str(n))
                assert app_evaluator.get_variant(f"k{n}", ctx()) == str(n)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n, td)) for n, td in enumerate(datas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    random.Random(7).shuffle(datas)
    for td in datas:
        td.restore()
    assert dicts(app_evaluator) == before


# --- override_flag -----------------------------------------------------------------------------


def test_override_flag_context_manager(app_evaluator):
    with override_flag("existing", active=False, evaluator=app_evaluator) as td:
        assert isinstance(td, TestData)
        assert not app_evaluator.is_enabled("existing", ctx())
        with override_flag("existing", variant="v9", evaluator=app_evaluator):
            assert triple(app_evaluator.evaluate("existing", ctx())) == (True, "v9", "default")
        assert not app_evaluator.is_enabled("existing", ctx())
    assert app_evaluator.is_enabled("existing", ctx())


def test_override_flag_decorator_sync(app_evaluator):
    @override_flag("existing", active=False, evaluator=lambda: app_evaluator)
    def view(x):
        return x, app_evaluator.is_enabled("existing", ctx())

    assert view.__name__ == "view"
    assert view(1) == (1, False)
    assert app_evaluator.is_enabled("existing", ctx())


def test_override_flag_decorator_async(app_evaluator):
    @override_flag("brand-new", variant="b", evaluator=app_evaluator)
    async def view():
        await asyncio.sleep(0)
        return app_evaluator.get_variant("brand-new", ctx())

    assert asyncio.run(view()) == "b"
    assert "brand-new" not in app_evaluator


def test_override_flag_decorator_restores_on_exception(app_evaluator):
    @override_flag("existing", active=False, evaluator=app_evaluator)
    def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert app_evaluator.is_enabled("existing", ctx())


def test_override_flag_on_testcase_class(app_evaluator):
    seen = []

    @override_flag("existing", active=False, evaluator=app_evaluator)
    class Case(unittest.TestCase):
        def setUp(self):
            seen.append(("setUp", app_evaluator.is_enabled("existing", ctx())))

        def test_one(self):
            seen.append(("test", app_evaluator.is_enabled("existing", ctx())))

        def test_two(self):
            seen.append(("test", app_evaluator.is_enabled("existing", ctx())))

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Case)
    result = unittest.TestResult()
    suite.run(result)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen == [("setUp", False), ("test", False)] * 2
    assert app_evaluator.is_enabled("existing", ctx())


def test_override_flag_rejects_other_classes():
    with pytest.raises(TypeError, match="TestCase"):
        override_flag("f", evaluator=FlagEvaluator())(type("NotATest", (), {}))


def test_override_flag_uses_current_test_data():
    with pytest.raises(RuntimeError, match="evaluator="):
        override_flag("f").enable()
    td = TestData()
    with td.activate(), override_flag("f", variant="x"):
        assert td.evaluator.get_variant("f", ctx()) == "x"
    assert "f" not in td.evaluator


def test_override_flag_evaluator_function_must_return_evaluator():
    with pytest.raises(TypeError, match="not a FlagEvaluator"):
        override_flag("f", evaluator=lambda: "nope").enable()


# --- hooks for adapters --------------------------------------------------------------------------


def test_current_and_activate():
    assert current() is None
    a, b = TestData(), TestData()
    with a.activate():
        assert current() is a
        with b.activate():
            assert current() is b
        assert current() is a
    assert current() is None


def test_bind_app_with_state():
    app = types.SimpleNamespace(state=types.SimpleNamespace())
    assert bound_evaluator(app) is None
    td = TestData()
    td.bind(app)
    assert bound_evaluator(app) is td.evaluator
    assert app.state.ferroflag_test_evaluator is td.evaluator
    td.restore()
    assert bound_evaluator(app) is None
    assert not hasattr(app.state, "ferroflag_test_evaluator")


def test_bind_object_without_state_and_nesting():
    target = types.SimpleNamespace()
    first, second = FlagEvaluator(), FlagEvaluator()
    undo_first = bind(target, first)
    undo_second = bind(target, second)
    assert bound_evaluator(target) is second
    undo_second()
    assert bound_evaluator(target) is first
    undo_first()
    assert bound_evaluator(target) is None


def test_flag_states_and_declared_variants():
    config = FlagConfig(
        "theme",
        variants={"light": 1, "dark": 1},
        default_variant="light",
        rules=[{"conditions": [], "variant": "hc"}, {"conditions": [], "variant": ""}],
    )
    weighted = list(config.variants)  # in the engine's order
    assert sorted(weighted) == ["dark", "light"]
    assert declared_variants(config) == [*weighted, "hc"]
    assert flag_states(config) == [False, True, *weighted, "hc"]
    assert flag_states(FlagConfig("plain")) == [False, True]
    assert flag_states(None) == [False, True]


# --- format 2 builders: rule rollouts, segments, prerequisites, values, bucketing, a frozen clock ------


def test_rule_rollout_takes_a_share_of_the_matches_and_the_rest_fall_through():
    td = TestData()
    td.flag("f").rule("plan", "eq", "team", variant="t", percentage=25)
    team = [EvalContext(f"user-{i}", plan="team") for i in range(4_000)]
    answers = [td.evaluator.evaluate("f", c) for c in team]
    taken = sum(a.reason == "rule_match" for a in answers)
    assert 800 <= taken <= 1_200
    assert {a.reason for a in answers} == {"rule_match", "no_match"}
    assert td.evaluator.evaluate("f", ctx(plan="free")).reason == "no_match"


def test_segment_override_and_restore(app_evaluator):
    app_evaluator.update(
        app_evaluator.configs(),
        segments=[
            {"key": "staff", "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["x"]}]}]}
        ],
    )
    with TestData(app_evaluator) as td:
        td.flag("gated").rule("", "in_segment", "staff")
        assert not app_evaluator.is_enabled("gated", ctx(email="a@staff.test"))
        td.segment("staff", [Condition("email", "ends_with", ["@staff.test"])])
        assert app_evaluator.evaluate("gated", ctx(email="a@staff.test")).reason == "rule_match"
        assert app_evaluator.evaluate("gated", ctx(email="a@else.test")).reason == "no_match"
    # Leaving puts the evaluator's own segment back, with its own condition.
    assert [s.rules[0][0].attribute for s in app_evaluator.segments()] == ["plan"]


def test_requires_values_off_variant_and_bucket_by():
    td = TestData()
    td.flag("parent").off()
    td.flag("limit").values({"big": 500, "small": 10}).variant("big").off_variant("small").requires("parent")
    assert triple(td.evaluator.evaluate("limit", ctx())) == (False, "small", "prerequisite_failed")
    assert td.evaluator.get_value("limit", ctx()) == 10
    td.flag("parent").on()
    assert td.evaluator.get_value("limit", ctx()) == 500
    td.flag("org").rollout(50).bucket_by("org_id")
    org = [EvalContext(f"user-{i}", properties={"org_id": "acme"}) for i in range(200)]
    assert len({td.evaluator.is_enabled("org", c) for c in org}) == 1  # one org, one answer
    assert td.evaluator.evaluate("org", ctx()).reason == "percentage_excluded"  # no org: outside the rollout


def test_with_now_freezes_the_clock_for_time_conditions():
    td = TestData()
    td.flag("launch").rule("now", "after", "2027-01-04T09:00:00+01:00")
    before = with_now(ctx(), "2027-01-04T07:59:59Z")
    after = with_now(ctx(plan="team"), datetime(2027, 1, 4, 8, 0, 1, tzinfo=timezone.utc))
    assert td.evaluator.evaluate("launch", before).reason == "no_match"
    assert td.evaluator.evaluate("launch", after).reason == "rule_match"
    assert after.plan == "team"
    assert td.evaluator.explain("launch", after)["rules"][0]["conditions"][0]["instant"]["compared_to"] == 1_799_049_600
    with pytest.raises(ValueError, match="aware datetime"):
        with_now(ctx(), datetime(2027, 1, 4))
    with pytest.raises(TypeError):
        with_now(ctx(), True)


# --- only_for / also_for: what the name says ------------------------------------------------------------


def test_trap_only_for_serves_nobody_else_whatever_the_flag_served_before(app_evaluator):
    """Trap: `on_for(user_ids=[...])` kept the flag's existing rollout, so other users still got it.
    `only_for()` is on for those users and nobody else."""
    with TestData(app_evaluator) as td:
        td.flag("targeted").only_for(user_ids=["alice"], variant="a")  # had a rule and a 100 % rollout
        ev = td.evaluator
        assert triple(ev.evaluate("targeted", ctx("alice"))) == (True, "a", "rule_match")
        assert triple(ev.evaluate("targeted", ctx("bob", plan="team"))) == (False, "", "no_match")  # its old rule: gone
        assert sum(ev.is_enabled_many("targeted", USERS)) == 0
        td.flag("existing").only_for(plan="enterprise")  # was on for everyone
        assert ev.is_enabled("existing", ctx(plan="enterprise"))
        assert not ev.is_enabled("existing", ctx(plan="free"))
    td = TestData()
    td.flag("r").rollout(50)
    td.flag("r").only_for(user_ids=["u1"])
    assert [u.user_id for u in USERS if td.evaluator.is_enabled("r", u)] == []
    assert td.evaluator.is_enabled("r", EvalContext("u1"))
    with pytest.raises(TypeError, match=r"only_for\(\) needs user_ids"):
        td.flag("r").only_for()


def test_also_for_adds_users_and_keeps_who_had_the_flag(app_evaluator):
    with TestData(app_evaluator) as td:
        td.flag("targeted").also_for(user_ids=["alice"], variant="a")
        ev = td.evaluator
        assert ev.get_variant("targeted", ctx("alice")) == "a"
        assert ev.get_variant("targeted", ctx("bob", plan="team")) == "t"  # the old rule stays
        assert ev.is_enabled("targeted", ctx("carol"))  # and so does the 100 % rollout
    td = TestData()
    td.flag("r").rollout(30)
    td.flag("r").also_for(user_ids=["u-extra"])
    shares = sum(td.evaluator.is_enabled_many("r", USERS)) / len(USERS)
    assert 0.27 < shares < 0.33  # the rollout is kept
    assert td.evaluator.is_enabled("r", EvalContext("u-extra"))
    td.flag("off").off()
    td.flag("off").also_for(user_ids=["u1"])  # off for everyone: then on for u1 only
    assert td.evaluator.is_enabled("off", EvalContext("u1"))
    assert not td.evaluator.is_enabled("off", EvalContext("u2"))
    with pytest.raises(TypeError, match="not a str"):
        td.flag("r").also_for(user_ids="u1")


def test_on_for_keeps_its_meaning_only_on_a_flag_without_targeting_also_on_one_with(app_evaluator):
    with TestData(app_evaluator) as td:
        td.flag("targeted").on_for(user_ids=["alice"])  # has targeting: the others keep it
        assert td.evaluator.is_enabled("targeted", ctx("bob"))
        td.flag("new").on_for(user_ids=["alice"])  # none: only alice
        assert not td.evaluator.is_enabled("new", ctx("bob"))


# --- overrides win over a sync source -------------------------------------------------------------------


def write_document(path, flags):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flags": flags}))
    os.replace(tmp, path)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_trap_overrides_win_over_a_file_watcher_writing_the_evaluator(tmp_path):
    """Trap: a TestData laid over an evaluator that a sync source keeps current lost its overrides at the
    source's next write (and put stale flags back on restore). The adapters' view keeps them on top."""
    path = tmp_path / "flags.json"
    write_document(path, [{"key": "beta", "enabled": True}, {"key": "other", "enabled": False}])
    evaluator = FlagEvaluator()
    watcher = FlagFileWatcher(evaluator, path, interval=0.05)
    assert watcher.start(5)
    try:
        with TestData(evaluator) as td:
            td.flag("beta").off()
            assert not resolve(evaluator).is_enabled("beta", ctx())
            write_document(path, [{"key": "beta", "enabled": True}, {"key": "other", "enabled": True}])
            assert wait_until(lambda: evaluator.is_enabled("other", ctx()))  # the watcher wrote the evaluator
            seen = resolve(evaluator)
            assert seen is bound_evaluator(evaluator)
            assert not seen.is_enabled("beta", ctx())  # the override wins
            assert seen.is_enabled("other", ctx())  # the source's other flags come through
            assert td.config("other").enabled is True  # and builders start from them
            td.flag("other").variant("test")
            assert resolve(evaluator).get_variant("other", ctx()) == "test"
        # Restored: the source's flags stay, nothing old is put back; no view any more.
        assert bound_evaluator(evaluator) is None
        assert evaluator.is_enabled("beta", ctx())
        assert evaluator.is_enabled("other", ctx())
    finally:
        watcher.stop()


def test_a_layer_without_a_sync_source_writes_the_evaluator_itself(app_evaluator):
    with TestData(app_evaluator) as td:
        td.flag("existing").off()
        assert bound_evaluator(app_evaluator) is None  # nothing else wrote it: it holds the test's flags
        assert not app_evaluator.is_enabled("existing", ctx())


def test_builder_build_and_key_give_the_definition_as_published():
    td = TestData()
    builder = td.flag("f").only_for(user_ids=["u1"], variant="v").values({"v": 3})
    assert builder.key == "f"
    built = builder.build()
    assert isinstance(built, FlagConfig)
    assert built.to_dict() == td.config("f").to_dict() == td.evaluator.get_config("f").to_dict()
    assert built.percentage == 0
    assert [rule.variant for rule in built.rules] == ["v"]
