"""Flags for your tests: an in-memory flag source layered over a `FlagEvaluator`.

`TestData` follows LaunchDarkly's TestData: build flags fluently, and every change is published to
the evaluator at once, through the real engine, so a test sees exactly what production code would::

    td = TestData()                                   # a fresh evaluator: td.evaluator
    td.flag("new-checkout").on()                      # on for everyone
    td.flag("theme").variant("dark")                  # on for everyone, variant "dark"
    td.flag("beta").only_for(user_ids=["u1", "u2"])   # on for these users, nobody else
    td.flag("pilot").also_for(user_ids=["u3"])        # on for u3 too, the rollout kept
    td.flag("search-v2").rollout(25)                  # sticky 25 % rollout
    td.set({"new-checkout": False, "theme": "light"}) # several at once, one snapshot

    with TestData(app_evaluator) as td:               # layer over an evaluator you already have…
        td.flag("new-checkout").off()
    # …and it is back to the flags it had before

Overrides win over sync sources: when a `FlagSyncClient` or `FlagFileWatcher` writes an evaluator a
`TestData` is laid over, the adapters (FastAPI, OpenFeature) answer from a test view of it, the source's
flags with the test's changes on top, until the `TestData` is restored; see `TestData`.

The pytest plugin (`ferroflag.pytest_plugin`) gives every test such a `TestData` as the `ferroflag`
fixture. `override_flag` is the same machinery as a decorator and context manager (the shape Django
users know from django-waffle). `bind`, `bound_evaluator` and `current` are the hooks framework
adapters use to find the test's evaluator.

Importing this module starts no thread and opens no connection.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import unittest
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

from ferroflag import Condition, EvalContext, FlagConfig, FlagEvaluator, Prerequisite, Rule, Segment
from ferroflag._binding import BIND_ATTRIBUTE, bind, bound_evaluator
from ferroflag._layers import Layers, layers_by_evaluator
from ferroflag._layers import lock as _lock

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "BIND_ATTRIBUTE",
    "FlagBuilder",
    "FlagSpec",
    "FlagState",
    "TestData",
    "bind",
    "bound_evaluator",
    "current",
    "declared_variants",
    "flag_states",
    "override_flag",
    "with_now",
]

# Not a test module, and `TestData` is not a test class, whatever pytest's name patterns say.
__test__ = False

FlagState: TypeAlias = bool | str
"""One state of a flag for one test: `False` off, `True` on, a `str` on with that variant."""

FlagSpec: TypeAlias = bool | str | FlagConfig | Mapping[str, Any] | None
"""What `TestData.set()` accepts per key: a `FlagState`, `None` (no such flag), a `FlagConfig`, or a
wire-format dict (its `key` may be left out, `enabled` defaults to true)."""


_T = TypeVar("_T")


# --- the running test ------------------------------------------------------------------------------


_current: list[TestData] = []


def current() -> TestData | None:
    """The `TestData` of the running test, or `None`.

    The pytest plugin's `ferroflag` fixture makes its `TestData` current for the test's duration (and
    `TestData.activate()` does the same for your own fixtures). It is one value per process, which
    fits pytest's one-test-at-a-time model and pytest-xdist's worker processes. Adapters with one
    process-wide evaluator (Django) may consult it; adapters that have an app object should prefer
    `bound_evaluator(app)`.
    """
    with _lock:
        return _current[-1] if _current else None


# --- states of a flag -------------------------------------------------------------------------


def declared_variants(config: FlagConfig) -> list[str]:
    """The variants a flag can serve: its weighted `variants`, `default_variant`, then each rule's
    variant, in that order, without duplicates or empty names."""
    names = [*config.variants, config.default_variant, *(rule.variant for rule in config.rules)]
    return [name for name in dict.fromkeys(names) if name]


def flag_states(config: FlagConfig | None) -> list[FlagState]:
    """Every state `flag_matrix` runs a test in: off, on, and each declared variant."""
    return [False, True, *(declared_variants(config) if config is not None else [])]


# --- the builder --------------------------------------------------------------------------------


def _values(values: str | float | Iterable[str | float]) -> list[str | float]:
    if isinstance(values, str | int | float):
        return [values]
    return list(values)


def _target_rules(
    user_ids: Iterable[str | int] | None,
    variant: str,
    attributes: Mapping[str, str | float | Iterable[str | float]],
    method: str,
) -> list[Rule]:
    """One `in` rule per target of `only_for()` / `also_for()` / `on_for()`."""
    targets: list[tuple[str, list[str | float]]] = []
    if user_ids is not None:
        if isinstance(user_ids, str):
            raise TypeError(f"{method}(): user_ids must be a list of ids, not a str")
        targets.append(("user_id", [str(u) for u in user_ids]))
    targets.extend((name, _values(values)) for name, values in attributes.items())
    if not targets:
        raise TypeError(f"{method}() needs user_ids or at least one attribute")
    return [Rule(conditions=[Condition(name, "in", values)], variant=variant) for name, values in targets]


class FlagBuilder:
    """Describes one flag; every method publishes the result at once and returns the builder.

    `on()`, `off()` and `variant()` describe the flag for everyone (and replace its targeting);
    `only_for()` for these users and nobody else; `also_for()`, `rule()`, `rollout()` and `split()`
    refine it. A builder starts from the flag's
    current definition, or, for a new flag, from "on for everyone".
    """

    __slots__ = (
        "_bucket_by",
        "_data",
        "_default_variant",
        "_enabled",
        "_key",
        "_metadata",
        "_off_variant",
        "_percentage",
        "_prerequisites",
        "_rest_set",
        "_rules",
        "_values",
        "_variants",
    )

    def __init__(self, data: TestData, key: str, config: FlagConfig | None) -> None:
        if not key:
            raise ValueError("flag key must not be empty")
        base = FlagConfig(key) if config is None else config
        self._data = data
        self._key = key
        self._enabled = base.enabled
        self._percentage = base.percentage
        self._rules: list[Rule] = base.rules
        self._variants: dict[str, float] = base.variants
        self._default_variant = base.default_variant
        self._bucket_by = base.bucket_by
        self._prerequisites: list[Prerequisite] = base.prerequisites
        self._off_variant = base.off_variant
        self._values: dict[str, Any] = base.values
        self._metadata: dict[str, str | int | float | bool] = base.metadata
        # Whether rollout() was called on this builder: then on_for()/rule() leave the rest alone.
        self._rest_set = False

    @property
    def key(self) -> str:
        return self._key

    def build(self) -> FlagConfig:
        """The definition as it stands (already published)."""
        return FlagConfig(
            key=self._key,
            enabled=self._enabled,
            percentage=self._percentage,
            rules=self._rules,
            variants=self._variants,
            default_variant=self._default_variant,
            bucket_by=self._bucket_by,
            prerequisites=self._prerequisites,
            off_variant=self._off_variant,
            values=self._values,
            metadata=self._metadata,
        )

    def _publish(self) -> FlagBuilder:
        self._data._put(self._key, self.build())
        return self

    def on(self) -> FlagBuilder:
        """On for everyone: drops rules and rollout, keeps the variant settings."""
        self._enabled = True
        self._rules = []
        self._percentage = 0.0
        return self._publish()

    def off(self) -> FlagBuilder:
        """Off for everyone (`enabled: false`, reason `disabled`)."""
        self._enabled = False
        return self._publish()

    def variant(self, name: str) -> FlagBuilder:
        """On for everyone, serving `name` (drops rules, rollout and weighted variants)."""
        self._enabled = True
        self._rules = []
        self._percentage = 0.0
        self._variants = {}
        self._default_variant = name
        return self._publish()

    def split(self, weights: Mapping[str, float]) -> FlagBuilder:
        """A weighted, sticky variant split among the users the flag is on for, e.g. `{"a": 50, "b": 50}`."""
        self._variants = dict(weights)
        return self._publish()

    def rollout(self, percentage: float) -> FlagBuilder:
        """On for `percentage` % of the contexts no rule takes (sticky by the flag's `bucket_by`).
        0 means nobody else: with rules, only the contexts they take (`no_match` for the others);
        without rules, nobody (the flag is turned off until a rule is added). 100 means everyone."""
        if isinstance(percentage, bool) or not isinstance(percentage, int | float):
            raise TypeError(f"percentage must be a number, got {type(percentage).__name__}")
        if not (math.isfinite(percentage) and 0 <= percentage <= 100):
            raise ValueError(f"percentage must be between 0 and 100, got {percentage}")
        # docs/spec.md §2 step 5: 0 on a flag without rules would serve everyone.
        self._enabled = percentage > 0 or bool(self._rules)
        self._percentage = float(percentage)
        self._rest_set = True
        return self._publish()

    def values(self, values: Mapping[str, Any]) -> FlagBuilder:
        """The value each variant carries (docs/spec.md §2.2), e.g. `{"on": {"limit": 50}, "off": {"limit": 5}}`."""
        self._values = dict(values)
        return self._publish()

    def off_variant(self, name: str) -> FlagBuilder:
        """The variant (and so the value) every off answer carries."""
        self._off_variant = name
        return self._publish()

    def bucket_by(self, attribute: str) -> FlagBuilder:
        """Rollouts and splits stick to this attribute (`org_id`) instead of `user_id`."""
        self._bucket_by = attribute
        return self._publish()

    def requires(self, key: str, variants: Iterable[str] | None = None) -> FlagBuilder:
        """Adds a prerequisite: this flag is off (`prerequisite_failed`) unless flag `key` is on
        (with one of `variants`, when given)."""
        self._prerequisites = [*self._prerequisites, Prerequisite(key, None if variants is None else list(variants))]
        return self._publish()

    def only_for(
        self,
        user_ids: Iterable[str | int] | None = None,
        *,
        variant: str = "",
        **attributes: str | float | Iterable[str | float],
    ) -> FlagBuilder:
        """On for these users, or for anyone whose attribute is one of the values, and for nobody else
        (`only_for(user_ids=["alice"])`, `only_for(plan=["enterprise"], country="NZ")`: one rule each,
        any may match). Replaces the flag's rules and rollout; everyone else gets `no_match`."""
        self._rules = []
        self._percentage = 0.0  # with rules, 0 serves only their matches (docs/spec.md §2 step 5)
        self._rest_set = True
        return self._target(_target_rules(user_ids, variant, attributes, "only_for"))

    def also_for(
        self,
        user_ids: Iterable[str | int] | None = None,
        *,
        variant: str = "",
        **attributes: str | float | Iterable[str | float],
    ) -> FlagBuilder:
        """On for these users (or attribute values) too, in addition to whoever the flag serves already:
        its rules and rollout stay as they are. On a flag that is off, the rest stay off; on a new flag
        (on for everyone), everyone keeps it."""
        if not self._enabled:
            self._percentage = 0.0  # nobody else had it: they still don't
        self._rest_set = True
        return self._target(_target_rules(user_ids, variant, attributes, "also_for"))

    def on_for(
        self,
        user_ids: Iterable[str | int] | None = None,
        *,
        variant: str = "",
        **attributes: str | float | Iterable[str | float],
    ) -> FlagBuilder:
        """The older name, kept for existing tests: `only_for()` on a flag without targeting or rollout,
        `also_for()` on a flag that has some (its other users keep it). Prefer the explicit names."""
        return self._target(_target_rules(user_ids, variant, attributes, "on_for"))

    def rule(
        self,
        attribute: str,
        operator: str,
        values: str | float | Iterable[str | float],
        *,
        variant: str = "",
        priority: int = 0,
        percentage: float = 100.0,
        variants: Mapping[str, float] | None = None,
        name: str = "",
    ) -> FlagBuilder:
        """Adds a targeting rule with one condition (any operator of docs/spec.md §5); a single value may be
        given bare (`rule("plan", "eq", "enterprise")`). `percentage` rolls the rule out to that share of
        its matches (the rest go on to the next rule), `variants` splits them; for a segment, use
        `rule("", "in_segment", "beta")`."""
        condition = Condition(attribute, operator, _values(values))
        rule = Rule(
            conditions=[condition],
            variant=variant,
            priority=priority,
            percentage=percentage,
            variants=None if variants is None else dict(variants),
            name=name,
        )
        return self._target([rule])

    def _target(self, rules: list[Rule]) -> FlagBuilder:
        # A flag without targeting that gets some now serves only the users it matches, unless this
        # builder set a rollout; a flag that already has rules keeps serving the rest as it did.
        everyone = self._percentage <= 0 or self._percentage >= 100
        if not self._rules and not self._rest_set and everyone:
            # A flag with rules and percentage 0 serves only their matches (docs/spec.md §2 step 5).
            self._percentage = 0.0
        self._enabled = True
        self._rules = [*self._rules, *rules]
        return self._publish()

    def __repr__(self) -> str:
        return f"FlagBuilder({self.build()!r})"


# --- TestData -------------------------------------------------------------------------------------


class TestData:
    """An in-memory flag source for tests, layered over one evaluator until `restore()`.

    Arguments:
        evaluator: The evaluator to change. `None` creates a fresh, empty one (`td.evaluator`).
            An existing evaluator keeps its other flags; `restore()` (or leaving the `with` block)
            publishes the flags it had before.

    A sync source may keep running on that evaluator (an app's lifespan under `with TestClient(app)`):
    the first time it writes new flags, they become the base and this `TestData` stops writing the
    evaluator; the adapters (`ferroflag.fastapi`, `ferroflag.openfeature`, anything that asks
    `bound_evaluator(evaluator)`) answer from the test view, the source's flags with the test's changes
    on top, so the overrides win until `restore()`, which then leaves the source's flags in place.
    Code that calls that evaluator itself, not through an adapter, sees what the source wrote last.

    Several `TestData` objects may share an evaluator (nested overrides, several threads): each is a
    layer, later layers win, and each can be restored in any order. One `TestData` object is meant
    for one thread at a time.
    """

    __test__ = False

    def __init__(self, evaluator: FlagEvaluator | None = None) -> None:
        self._evaluator = FlagEvaluator() if evaluator is None else evaluator
        self._overrides: dict[str, FlagConfig | None] = {}
        self._segments: dict[str, Segment] = {}
        self._unbinds: list[Callable[[], None]] = []
        self._batch_depth = 0
        self._pending = False
        self._closed = False
        with _lock:
            layers = layers_by_evaluator.get(id(self._evaluator))
            if layers is None:
                layers = layers_by_evaluator[id(self._evaluator)] = Layers(self._evaluator)
            layers.layers.append(self)
            self._layers = layers

    @property
    def evaluator(self) -> FlagEvaluator:
        return self._evaluator

    @property
    def active(self) -> bool:
        """False once `restore()` has run."""
        return not self._closed

    def flag(self, key: str) -> FlagBuilder:
        """A builder for `key`, starting from its current definition (or "on for everyone")."""
        return FlagBuilder(self, key, self.config(key))

    def config(self, key: str) -> FlagConfig | None:
        """The definition of `key` as this `TestData` sees it (its own changes over the evaluator's)."""
        with _lock:
            self._layers.check()
            return self._layers.resolved(upto=self).get(key)

    def set(self, flags: Mapping[str, FlagSpec]) -> None:
        """Sets several flags in one snapshot (all or none): `True` on for everyone, `False` off, a `str` that
        variant for everyone, `None` removes the flag (reason `not_found`), a `FlagConfig` or a
        wire-format dict replaces the definition."""
        if not isinstance(flags, Mapping):
            raise TypeError(f"flags must be a mapping of flag key to state, got {type(flags).__name__}")
        with self.batch():
            saved = dict(self._overrides)
            try:
                for key, spec in flags.items():
                    self._apply(key, spec)
            except BaseException:
                self._overrides = saved  # all or nothing
                raise

    def _apply(self, key: str, spec: FlagSpec) -> None:
        if not isinstance(key, str):
            raise TypeError(f"flag keys must be str, got {type(key).__name__}")
        if spec is None:
            self.delete(key)
        elif spec is True:
            self.flag(key).on()
        elif spec is False:
            self.flag(key).off()
        elif isinstance(spec, str):
            self.flag(key).variant(spec)
        elif isinstance(spec, FlagConfig):
            if spec.key != key:
                raise ValueError(f"FlagConfig for {key!r} has key {spec.key!r}")
            self._put(key, spec)
        elif isinstance(spec, Mapping):
            if spec.get("key", key) != key:
                raise ValueError(f"definition for {key!r} has key {spec.get('key')!r}")
            self._put(key, FlagConfig.from_dict({"enabled": True, **spec, "key": key}))
        else:
            raise TypeError(
                f"state of flag {key!r} must be True, False, a variant name, None, a FlagConfig or a dict, "
                f"got {type(spec).__name__}"
            )

    def segment(self, key: str, *rules: Iterable[Condition | dict[str, Any]]) -> None:
        """Defines (or replaces) segment `key` for this test: each argument a list of conditions (all
        must match), e.g. `td.segment("staff", [Condition("email", "ends_with", ["@example.com"])])`.
        `restore()` puts the evaluator's own segments back."""
        defined = Segment(key, [list(rule) for rule in rules])
        with _lock:
            self._check()
            self._segments[key] = defined
            self._changed()

    def delete(self, key: str) -> None:
        """Removes `key`: evaluations answer `not_found` (and `is_enabled` its `default`)."""
        self._put(key, None)

    def reset(self, key: str | None = None) -> None:
        """Drops this `TestData`'s changes to `key` (or to every flag and segment): the evaluator's own show again."""
        with _lock:
            self._check()
            if key is None:
                changed = bool(self._overrides) or bool(self._segments)
                self._overrides.clear()
                self._segments.clear()
            else:
                changed = self._overrides.pop(key, _MISSING) is not _MISSING
            if changed:
                self._changed()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Groups changes into one snapshot (readers never see half of them)."""
        with _lock:
            self._check()
            self._batch_depth += 1
        try:
            yield
        finally:
            with _lock:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._pending and not self._closed:
                    self._pending = False
                    self._layers.publish()

    def bind(self, target: object) -> None:
        """Points an app at this evaluator (see `bind()`) until `restore()`."""
        self._check()
        self._unbinds.append(bind(target, self._evaluator))

    @contextmanager
    def activate(self) -> Iterator[TestData]:
        """Makes this the `current()` test data for the duration of the block."""
        with _lock:
            _current.append(self)
        try:
            yield self
        finally:
            with _lock:
                # Remove this one, not the last: activations of different objects may interleave.
                for i in range(len(_current) - 1, -1, -1):
                    if _current[i] is self:
                        del _current[i]
                        break

    def restore(self) -> None:
        """Undoes every change and binding. Idempotent; the `TestData` cannot be used afterwards."""
        with _lock:
            if self._closed:
                return
            self._closed = True
            while self._unbinds:
                self._unbinds.pop()()
            layers = self._layers
            layers.layers.remove(self)
            if layers.layers:
                layers.check()
                if self._overrides or self._segments:
                    layers.publish()
            else:
                del layers_by_evaluator[id(self._evaluator)]
                layers.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError("this TestData was restored; create a new one")

    def _put(self, key: str, config: FlagConfig | None) -> None:
        with _lock:
            self._check()
            self._overrides[key] = config
            self._changed()

    def _changed(self) -> None:
        if self._batch_depth:
            self._pending = True
        else:
            self._layers.publish()

    def __repr__(self) -> str:
        state = "active" if self.active else "restored"
        return f"<TestData {state}, {len(self._overrides)} override(s) on {self._evaluator!r}>"


_MISSING: Any = object()


# --- override_flag --------------------------------------------------------------------------------


class override_flag:  # lower case: it is used as a decorator, like Django's override_settings
    """Sets one flag for a block, a function or a `unittest.TestCase` class, then restores it.

    Works as `with override_flag("key", active=True):`, as `@override_flag(...)` on sync and async
    functions, and on `TestCase` classes (each test gets the flag from `setUp` until its cleanup).
    The signature matches django-waffle's (`variant` is ferroflag's addition): the Django adapter
    wraps it with its own evaluator. Each use is its own `TestData` layer, so nested and concurrent
    overrides restore correctly.

    Arguments:
        key: The flag.
        active: On (`True`) or off (`False`) for everyone.
        variant: With `active`, the variant everyone gets.
        evaluator: The evaluator to change, or a function returning it (called when the override
            starts, so a decorator can be applied before the evaluator exists). `None` uses
            `current()`, the running test's.
    """

    def __init__(
        self,
        key: str,
        active: bool = True,
        variant: str = "",
        *,
        evaluator: FlagEvaluator | Callable[[], FlagEvaluator] | None = None,
    ) -> None:
        self.key = key
        self.active = active
        self.variant = variant
        self._evaluator = evaluator
        self._entered: list[TestData] = []
        self._entered_lock = threading.Lock()

    def _target(self) -> FlagEvaluator:
        if isinstance(self._evaluator, FlagEvaluator):
            return self._evaluator
        if self._evaluator is not None:
            evaluator = self._evaluator()
            if not isinstance(evaluator, FlagEvaluator):
                raise TypeError(f"the evaluator function returned {type(evaluator).__name__}, not a FlagEvaluator")
            return evaluator
        data = current()
        if data is None:
            raise RuntimeError("override_flag() needs evaluator=… outside a test using the ferroflag fixture")
        return data.evaluator

    def _open(self) -> TestData:
        data = TestData(self._target())
        try:
            data.set({self.key: (self.variant or True) if self.active else False})
        except BaseException:
            data.restore()
            raise
        return data

    def enable(self) -> TestData:
        """Starts the override (Django's `TestContextDecorator` names); `disable()` ends the latest one."""
        data = self._open()
        with self._entered_lock:
            self._entered.append(data)
        return data

    def disable(self) -> None:
        with self._entered_lock:
            data = self._entered.pop()
        data.restore()

    def __enter__(self) -> TestData:
        return self.enable()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disable()

    def __call__(self, target: _T) -> _T:
        if isinstance(target, type):
            if not issubclass(target, unittest.TestCase):
                raise TypeError("override_flag can decorate functions and unittest.TestCase classes only")
            return cast("_T", self._decorate_class(target))
        if not callable(target):
            raise TypeError(f"override_flag cannot decorate {type(target).__name__}")
        func = cast("Callable[..., Any]", target)
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                data = self._open()
                try:
                    return await func(*args, **kwargs)
                finally:
                    data.restore()

            return cast("_T", async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            data = self._open()
            try:
                return func(*args, **kwargs)
            finally:
                data.restore()

        return cast("_T", wrapper)

    def _decorate_class(self, cls: type[unittest.TestCase]) -> type[unittest.TestCase]:
        original = cls.setUp

        @functools.wraps(original)
        def set_up(test: unittest.TestCase) -> None:
            data = self._open()
            test.addCleanup(data.restore)
            original(test)

        cls.setUp = set_up  # type: ignore[method-assign,assignment]
        return cls


def with_now(ctx: EvalContext, now: str | float | datetime) -> EvalContext:
    """`ctx` with its clock frozen at `now` (docs/spec.md §3): `before` / `after` conditions on `now`
    read the context's `now` property instead of the clock. `now` is an RFC 3339 date-time, epoch
    seconds, or an aware `datetime`."""
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("with_now() needs an aware datetime (one with a tzinfo), or RFC 3339 text")
        instant = now.isoformat()
    elif isinstance(now, bool) or not isinstance(now, str | int | float):
        raise TypeError(f"now must be RFC 3339 text, epoch seconds or a datetime, got {type(now).__name__}")
    else:
        instant = str(now)
    properties = {**ctx.properties, "now": instant}
    return EvalContext(ctx.user_id, email=ctx.email, plan=ctx.plan, country=ctx.country, properties=properties)
