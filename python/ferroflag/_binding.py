"""Which evaluator an app, a provider or an evaluator answers from while a test has bound another one.

The run-time half of the testing hooks: the adapters (FastAPI, OpenFeature) look an evaluator up here
on every request, so this module is small, imports nothing but the core, and costs one falsy-dict
check when no test is running. `ferroflag.testing` writes the bindings and the test views.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ferroflag import FlagEvaluator

__all__ = ["BIND_ATTRIBUTE", "bind", "bound_evaluator", "register_view", "resolve"]

BIND_ATTRIBUTE = "ferroflag_test_evaluator"
"""The attribute `bind()` sets on `app.state` (or on the object itself when it has no `state`)."""

# `ferroflag.fastapi.STATE_ATTRIBUTE`, where `setup()` keeps the app's own evaluator (not imported:
# that module needs Starlette).
_APP_STATE_ATTRIBUTE = "ferroflag"

# A chain of bindings longer than this is a cycle (an evaluator bound, through others, to itself).
_MAX_HOPS = 8

_lock = threading.RLock()

# Bindings of evaluators (a `FlagEvaluator` takes no attributes): id(evaluator) -> (the evaluator,
# its bindings, latest last). The entry holds the evaluator alive, so its id cannot be reused
# meanwhile; the tuple is replaced whole, so lookups read it without the lock.
_evaluator_bindings: dict[int, tuple[FlagEvaluator, tuple[tuple[object, FlagEvaluator], ...]]] = {}

# Test views: id(evaluator) -> (the evaluator, a function giving the evaluator that holds its test
# flags, or None while it has none). `ferroflag.testing` registers one for each evaluator a
# `TestData` is laid over, so that what a sync source writes into that evaluator cannot hide them.
_views: dict[int, tuple[FlagEvaluator, Callable[[], FlagEvaluator | None]]] = {}


def _holder(target: object) -> object:
    return getattr(target, "state", target)


def _app_evaluator(holder: object) -> FlagEvaluator | None:
    evaluator = getattr(getattr(holder, _APP_STATE_ATTRIBUTE, None), "evaluator", None)
    return evaluator if isinstance(evaluator, FlagEvaluator) else None


def _bind_evaluator(own: FlagEvaluator, evaluator: FlagEvaluator) -> Callable[[], None]:
    token = object()
    with _lock:
        _, bindings = _evaluator_bindings.get(id(own), (own, ()))
        _evaluator_bindings[id(own)] = (own, (*bindings, (token, evaluator)))

    def unbind() -> None:
        with _lock:
            entry = _evaluator_bindings.get(id(own))
            if entry is None:
                return
            rest = tuple(binding for binding in entry[1] if binding[0] is not token)
            if rest:
                _evaluator_bindings[id(own)] = (own, rest)
            else:
                del _evaluator_bindings[id(own)]

    return unbind


def register_view(evaluator: FlagEvaluator, view: Callable[[], FlagEvaluator | None]) -> Callable[[], None]:
    """Makes `resolve(evaluator)` answer `view()` (when it is not None) until the returned function is called."""
    with _lock:
        _views[id(evaluator)] = (evaluator, view)

    def unregister() -> None:
        with _lock:
            entry = _views.get(id(evaluator))
            if entry is not None and entry[1] is view:
                del _views[id(evaluator)]

    return unregister


def bind(target: object, evaluator: FlagEvaluator) -> Callable[[], None]:
    """Points an app (or an OpenFeature provider) at `evaluator` until the returned function is called.

    Sets `target.state.ferroflag_test_evaluator` (Starlette/FastAPI apps have a `state`) or, for an
    object without `state` (a `ferroflag.openfeature.FerroflagProvider`, say), the attribute on the
    object itself. Adapters look it up with `bound_evaluator(app)` before their own evaluator, so no
    `app.dependency_overrides` is needed, and an app's lifespan, which sets up its own evaluator,
    does not undo the binding.

    When the app has its own evaluator (`app.state.ferroflag.evaluator`, as
    `ferroflag.fastapi.setup()` sets it), that evaluator is bound too: a `FerroflagProvider` over it
    (the one the app registered with the OpenFeature API) resolves against `evaluator` as well.
    `target` may also be a `FlagEvaluator`: then whatever looks up `bound_evaluator(that evaluator)`
    follows. Bindings nest; the returned function undoes this one only, once.
    """
    if not isinstance(evaluator, FlagEvaluator):
        raise TypeError(f"bind() needs a FlagEvaluator to point {target!r} at, got {type(evaluator).__name__}")
    if isinstance(target, FlagEvaluator):
        return _bind_evaluator(target, evaluator)
    holder = _holder(target)
    missing = object()
    previous = getattr(holder, BIND_ATTRIBUTE, missing)
    setattr(holder, BIND_ATTRIBUTE, evaluator)
    own = _app_evaluator(holder)
    unbind_own = None if own is None or own is evaluator else _bind_evaluator(own, evaluator)
    done = False

    def unbind() -> None:
        nonlocal done
        if done:
            return
        done = True
        if unbind_own is not None:
            unbind_own()
        if previous is missing:
            if getattr(holder, BIND_ATTRIBUTE, missing) is not missing:
                delattr(holder, BIND_ATTRIBUTE)
        else:
            setattr(holder, BIND_ATTRIBUTE, previous)

    return unbind


def resolve(evaluator: FlagEvaluator) -> FlagEvaluator:
    """The evaluator that answers for `evaluator` now: following its bindings (latest first) and the
    test view of a `TestData` laid over it, to the end of the chain; `evaluator` itself when none."""
    if not _evaluator_bindings and not _views:  # no test running: the production path
        return evaluator
    for _ in range(_MAX_HOPS):
        entry = _evaluator_bindings.get(id(evaluator))
        following: FlagEvaluator | None = None
        if entry is not None and entry[0] is evaluator:
            following = entry[1][-1][1]
        else:
            view = _views.get(id(evaluator))
            if view is not None and view[0] is evaluator:
                following = view[1]()
        if following is None or following is evaluator:
            return evaluator
        evaluator = following
    raise RuntimeError("ferroflag.testing.bind(): the evaluators are bound to each other in a cycle")


def bound_evaluator(target: object) -> FlagEvaluator | None:
    """The evaluator a test pointed `target` (an app, a provider, or a `FlagEvaluator`) at, or `None`.

    For an app or a provider: the evaluator `bind()` set on it, followed as `resolve()` does. For an
    evaluator: `resolve(target)` when that is another evaluator. Cheap enough for every request."""
    if isinstance(target, FlagEvaluator):
        found = resolve(target)
        return None if found is target else found
    evaluator = getattr(_holder(target), BIND_ATTRIBUTE, None)
    return resolve(evaluator) if isinstance(evaluator, FlagEvaluator) else None
