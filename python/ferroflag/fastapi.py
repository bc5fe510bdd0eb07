"""FastAPI integration: flag dependencies, a gate decorator and a lifespan-managed sync (install `ferroflag[fastapi]`).

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from ferroflag import EvalContext, FlagEvaluator, FlagSyncClient
    from ferroflag.fastapi import FlagDependencies, Flags, setup

    async def flag_context(user: Annotated[User | None, Depends(optional_user)]) -> EvalContext:
        return EvalContext(user.id, email=user.email, plan=user.plan) if user else EvalContext("")

    flag_deps = FlagDependencies(context=flag_context)     # once, next to your auth dependencies
    UserFlags = Annotated[Flags, Depends(flag_deps.get_flags)]

    evaluator = FlagEvaluator()
    app = FastAPI()
    setup(app, evaluator, context=flag_deps, sync=FlagSyncClient(evaluator, "https://flags.internal"))

    @app.get("/checkout", dependencies=[Depends(flag_deps.require_flag("new-checkout"))])  # 404 when off
    async def checkout(flags: UserFlags) -> dict[str, str]:
        return {"theme": flags.variant("dark-mode")}

What it does:

- The context is the app's decision, made once: `setup(app, evaluator, context=...)` takes either a
  `FlagDependencies` (its context may use `Depends`, e.g. on the logged-in user) or a function of the
  request. There is no default: a context read from request headers (`header_context`) trusts whatever
  the client sends, so it is an explicit choice, for headers a trusted proxy sets.
- Every flag dependency of the app evaluates for that context. With a function of the request, the
  module-level `require_flag`, `get_flags` (`FlagsDep`), `feature_gate`, `get_context` (`ContextDep`),
  `client_flags` work as they are; with a `FlagDependencies`, use its methods (FastAPI solves
  dependencies from the signatures it sees when a route is declared, so the module-level ones cannot
  reach yours). A dependency built for another context than the app's raises instead of gating on the
  wrong user: the app's startup lists the routes that have one, and their first request raises.
- `setup()` keeps everything on `app.state` (no module globals), so two apps in one process can use two
  evaluators. With `sync` (any `ferroflag.sources.FlagSource`: `FlagSyncClient`, `FlagFileWatcher`) the
  app's lifespan starts it (`start_async`, in each worker, after any fork) and stops it at shutdown,
  around your own lifespan. `sync_lifespan()` is that lifespan on its own.
- `Flags` (per request) evaluates each flag at most once however many dependencies and handlers ask.
- `require_flag(key, default=False)` answers 404 `{"detail": "Feature not available"}` when the flag is
  off, and gives the flag's `EvalResult` when on; `default` is the answer while no flag has that key
  (a kill switch that must stay on before the first sync: `default=True`).
- `feature_gate(key, fallback=..., default=False)` wraps a sync or async endpoint, below the route
  decorator (above it, it raises at import: the route would serve the ungated endpoint).
- `client_flags(flags)` / `ClientFlagsDep`: the flags a browser may see (metadata `"client": true`),
  as a JSON-ready dict, recorded in `flags.evaluated()`.
- In tests, `ferroflag.testing.TestData.bind(app)` (or `ferroflag.testing.bind`) points the app at a
  test evaluator: it is preferred over the app's own, so no `app.dependency_overrides` are needed, and
  a sync source started by the lifespan cannot overwrite the test's flags.

No middleware is installed (no `BaseHTTPMiddleware`): only the routes that use a flag dependency pay for
it, and every dependency here is `async` (no threadpool hop).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from ferroflag import EvalContext, EvalResult, FlagEvaluator
from ferroflag._binding import bound_evaluator, resolve
from ferroflag._request_flags import RequestFlagsBase, client_flag_keys
from ferroflag._route_check import registered_as_route
from ferroflag.sources import FlagSource

__all__ = [
    "CONTEXT_HEADERS",
    "STATE_ATTRIBUTE",
    "ClientFlags",
    "ClientFlagsDep",
    "ContextDep",
    "ContextFunction",
    "FerroflagFastAPI",
    "FlagDependencies",
    "FlagRequirement",
    "Flags",
    "FlagsDep",
    "Lifespan",
    "SyncSource",
    "client_flags",
    "feature_gate",
    "get_client_flags",
    "get_context",
    "get_flags",
    "header_context",
    "require_flag",
    "setup",
    "sync_lifespan",
]

_logger = logging.getLogger("ferroflag.fastapi")

STATE_ATTRIBUTE = "ferroflag"
"""`setup()` stores its `FerroflagFastAPI` as `app.state.ferroflag`."""

CONTEXT_HEADERS: Mapping[str, str] = {
    "user_id": "x-user-id",
    "email": "x-user-email",
    "plan": "x-plan",
    "country": "cf-ipcountry",
}
"""The request headers `header_context()` reads, by `EvalContext` field."""
_HEADER_FIELDS = {header.encode("latin-1"): field for field, header in CONTEXT_HEADERS.items()}

_DETAIL = "Feature not available"
# The parameter feature_gate() adds to an endpoint's signature; FastAPI fills it, the wrapper removes it.
_FLAGS_PARAM = "_ferroflag_flags"
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

_F = TypeVar("_F", bound=Callable[..., Any])

ContextFunction = Callable[..., EvalContext] | Callable[..., Awaitable[EvalContext]]
"""A function building the request's `EvalContext`, sync or async."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]
"""An ASGI lifespan as FastAPI takes it: `app -> async context manager` yielding state or None."""

SyncSource = FlagSource
"""Deprecated name of `ferroflag.sources.FlagSource`, kept for code that imports it from here."""

ClientFlags = dict[str, dict[str, Any]]
"""What `client_flags()` gives: flag key -> `{"enabled": bool, "variant": str, "value": JSON or None}`."""


# --- per-app state -----------------------------------------------------------------------------------


class FerroflagFastAPI:
    """What `setup()` attaches to an app (as `app.state.ferroflag`); `FerroflagFastAPI.of(app)` finds it.

    Attributes:
        evaluator: The app's evaluator (a test evaluator bound with `ferroflag.testing.bind` wins over it).
        sync: The flag source the lifespan starts and stops, if any (`sync.status()` suits a health check).
        context: The app's context as given to `setup()`: a `FlagDependencies`, a function of the
            request, or None (then the flag dependencies raise: there is no default context).
        sync_wait: Seconds the lifespan waits for the first snapshot before the app serves anyway.
    """

    __slots__ = ("_context", "_context_function", "context", "evaluator", "sync", "sync_wait")

    def __init__(
        self,
        evaluator: FlagEvaluator,
        sync: FlagSource | None,
        context: FlagDependencies | ContextFunction | None,
        sync_wait: float = 5.0,
    ) -> None:
        self.evaluator = evaluator
        self.sync = sync
        self.context = context
        self.sync_wait = sync_wait
        function = context.context if isinstance(context, FlagDependencies) else context
        # The user's function, to recognise a FlagDependencies built for the same context.
        self._context_function: Callable[..., Any] | None = function
        # The context as a coroutine function of the request, when it is one (else only FastAPI can
        # solve it, through the FlagDependencies' own dependencies).
        self._context: Callable[[Request], Awaitable[EvalContext]] | None = (
            None if function is None else _as_request_function(function)
        )

    @classmethod
    def of(cls, app: Any) -> FerroflagFastAPI:
        """The state `setup()` attached to `app`.

        Raises:
            RuntimeError: `setup()` was not called for this app.
        """
        state = _state(app)
        if state is None:
            raise RuntimeError(_NOT_SET_UP)
        return state

    def __repr__(self) -> str:
        return f"<FerroflagFastAPI evaluator={self.evaluator!r} sync={self.sync!r} context={self.context!r}>"


_NOT_SET_UP = (
    "ferroflag is not set up on this app: call ferroflag.fastapi.setup(app, evaluator, context=...) first "
    "(in tests too: the context says who the flags are evaluated for)"
)


def _state(app: Any) -> FerroflagFastAPI | None:
    state = getattr(app.state, STATE_ATTRIBUTE, None)
    return state if isinstance(state, FerroflagFastAPI) else None


def _set_up(app: Any) -> FerroflagFastAPI:
    state = _state(app)
    if state is None:
        raise RuntimeError(_NOT_SET_UP)
    return state


def _evaluator_for(app: Any, state: FerroflagFastAPI) -> FlagEvaluator:
    # A test's evaluator first (bound to the app, or laid over the app's own evaluator).
    evaluator = bound_evaluator(app)
    if evaluator is not None:
        return evaluator
    return resolve(state.evaluator)


def _is_request_annotation(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.rpartition(".")[2] in ("Request", "HTTPConnection")
    return annotation is inspect.Parameter.empty or (
        inspect.isclass(annotation) and issubclass(annotation, HTTPConnection)
    )


def _takes_request_only(function: Callable[..., Any]) -> bool | None:
    """True: `function(request)`; False: `function()`; None: it takes more (FastAPI dependencies)."""
    try:
        params = list(inspect.signature(function, eval_str=True).parameters.values())
    except (NameError, AttributeError, TypeError, SyntaxError):
        # An annotation that does not evaluate here (imported under TYPE_CHECKING, say): judge it by its text.
        params = list(inspect.signature(function).parameters.values())
    if len(params) > 1 or any(
        param.kind not in _POSITIONAL
        or param.default is not param.empty
        or not _is_request_annotation(param.annotation)
        for param in params
    ):
        return None
    return bool(params)


def _as_request_function(function: Callable[..., Any]) -> Callable[[Request], Awaitable[EvalContext]] | None:
    """`function` as a coroutine function of the request, or None when it takes other dependencies."""
    takes_request = _takes_request_only(function)
    if takes_request is None:
        return None
    call = function
    if call is header_context:

        async def call_inline(request: Request) -> EvalContext:
            # It reads the scope and never blocks: a threadpool hop would cost more than it does.
            return header_context(request)

        return call_inline
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__call__", None)):  # noqa: B004

        async def call_async(request: Request) -> EvalContext:
            return cast("EvalContext", await (call(request) if takes_request else call()))

        return call_async

    async def call_sync(request: Request) -> EvalContext:
        # As FastAPI runs a sync dependency: in the threadpool, so it may block.
        return cast("EvalContext", await run_in_threadpool(call, *((request,) if takes_request else ())))

    return call_sync


def setup(
    app: FastAPI,
    evaluator: FlagEvaluator,
    *,
    context: FlagDependencies | ContextFunction | None = None,
    sync: FlagSource | None = None,
    sync_wait: float = 5.0,
) -> FerroflagFastAPI:
    """Attaches an evaluator, the app's flag context and optionally a flag source to one app.

    Call it once per app, after `FastAPI(...)` and before serving; routes may be declared before or after.

    Arguments:
        app: The app.
        evaluator: The evaluator every flag dependency of this app reads.
        context: Who the flags are evaluated for, for every flag dependency of the app. There is no
            default: without it the flag dependencies raise `RuntimeError` (an app that reads flags
            only through the evaluator or OpenFeature needs none). Give
            - a `FlagDependencies(context=fn)`, where `fn` may use `Depends` (the logged-in user);
              then gate with its methods (`flag_deps.require_flag(...)`, `flag_deps.get_flags`, ...);
            - or a function of the `Request` (or of nothing) returning an `EvalContext`, async or sync
              (then run in the threadpool, as FastAPI runs sync dependencies); then the module-level
              dependencies work too. `header_context` is one: it trusts the request headers, so use
              it only behind a proxy that sets them and strips what clients send.
        sync: A `FlagSource` (`FlagSyncClient`, `FlagFileWatcher`; not started) that keeps `evaluator`
            current. The app's lifespan starts it with `start_async(sync_wait)` before your own
            lifespan runs and stops it after your lifespan ends. A source that is not ready in time
            does not fail the start-up: it is logged, and the app serves what the evaluator has
            while it keeps trying.
        sync_wait: Seconds the lifespan waits for the first snapshot.

    Returns:
        The state stored as `app.state.ferroflag`.

    Raises:
        RuntimeError: `setup()` was already called for this app.
        TypeError: `context` is neither a `FlagDependencies` built with a context nor a function of
            the request; `evaluator` has no `evaluate` method; `sync` is not a `FlagSource`.
        ValueError: `sync_wait` is negative.
    """
    if _state(app) is not None:
        raise RuntimeError("ferroflag is already set up on this app")
    if not callable(getattr(evaluator, "evaluate", None)):
        raise TypeError(f"evaluator must be a FlagEvaluator, got {type(evaluator).__name__}")
    if context is None:
        pass  # the flag dependencies will say so at the first request: see `_NO_CONTEXT`
    elif not isinstance(context, FlagDependencies):
        if not callable(context):
            raise TypeError(f"context must be a FlagDependencies or a function, got {type(context).__name__}")
        if _takes_request_only(context) is None:
            raise TypeError(
                f"setup(context=...) takes a function of the request only, got {context!r}; for a context "
                "built from other dependencies, wrap it once, flag_deps = FlagDependencies(context=...), pass "
                "setup(app, evaluator, context=flag_deps) and use flag_deps.require_flag/get_flags/feature_gate"
            )
    elif context.context is None:
        raise TypeError("setup(context=FlagDependencies()) needs a FlagDependencies built with a context")
    if sync is not None and not isinstance(sync, FlagSource):
        raise TypeError(
            "sync must be a ferroflag.sources.FlagSource (a FlagSyncClient or FlagFileWatcher, or an object "
            f"with start/start_async/wait_ready/stop/status), got {type(sync).__name__}"
        )
    if sync_wait < 0:
        raise ValueError(f"sync_wait must be >= 0, got {sync_wait}")
    state = FerroflagFastAPI(evaluator, sync, context, sync_wait)
    setattr(app.state, STATE_ATTRIBUTE, state)
    if sync is not None:
        app.router.lifespan_context = cast("Any", sync_lifespan(sync, app.router.lifespan_context, wait=sync_wait))
    # Outermost: the routes are checked at startup, before the sync starts.
    app.router.lifespan_context = cast("Any", _checked_lifespan(app.router.lifespan_context))
    return state


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    """Every dependency function of a FastAPI route's dependency tree (`Dependant.call`, recursively)."""
    stack = list(getattr(dependant, "dependencies", ()))
    while stack:
        sub = stack.pop()
        yield sub.call
        stack.extend(getattr(sub, "dependencies", ()))


def _route_problems(app: Any, state: FerroflagFastAPI) -> list[str]:
    """The routes of `app` whose flag dependencies cannot evaluate for the app's context: what would
    raise at their first request, found at startup instead."""
    problems: list[str] = []
    overridden = getattr(app, "dependency_overrides", {})
    for route in app.router.routes:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        where = f"{' '.join(sorted(getattr(route, 'methods', None) or ()))} {getattr(route, 'path', route)!s}"
        for call in _dependency_calls(dependant):
            if call is get_context and state._context is None and get_context not in overridden:
                problems.append(f"{where}: a module-level ferroflag.fastapi dependency: {_unsolvable(state, 'it')}")
                break
            owner = getattr(call, "_ferroflag_owner", None)
            if isinstance(owner, FlagDependencies) and not _serves(state, owner):
                problems.append(f"{where}: {owner!r} is not the app's context ({state.context!r})")
                break
    return problems


def _checked_lifespan(lifespan: Lifespan) -> Lifespan:
    @asynccontextmanager
    async def ferroflag_route_check(app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        state = _state(app)
        problems = [] if state is None else _route_problems(app, state)
        if problems:
            raise RuntimeError(
                "ferroflag: these routes cannot evaluate flags for this app:\n  " + "\n  ".join(problems)
            )
        async with lifespan(app) as inner_state:
            yield inner_state

    return ferroflag_route_check


# --- lifespan ----------------------------------------------------------------------------------------


def sync_lifespan(sync: FlagSource, lifespan: Lifespan | None = None, *, wait: float = 5.0) -> Lifespan:
    """A lifespan that starts `sync` on startup and stops it on shutdown, around `lifespan`.

    `setup(app, evaluator, sync=...)` installs this for you; use it directly when you build the
    lifespan yourself: `FastAPI(lifespan=sync_lifespan(client, my_lifespan))`.

    Arguments:
        sync: A `FlagSource` (`FlagSyncClient`, `FlagFileWatcher`).
        lifespan: Your lifespan (an `@asynccontextmanager` function or an async generator function),
            run inside: it sees the flags loaded, and whatever state it yields reaches `request.state`.
        wait: Seconds to wait for the first snapshot (`start_async(wait)`); the app starts anyway.

    Returns:
        The lifespan, for `FastAPI(lifespan=...)`.
    """
    inner = asynccontextmanager(lifespan) if inspect.isasyncgenfunction(lifespan) else lifespan

    @asynccontextmanager
    async def ferroflag_lifespan(app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        if not await sync.start_async(wait):
            _logger.warning(
                "%r: no flags loaded within %ss; serving what the evaluator has while it keeps trying", sync, wait
            )
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            # stop() joins the thread (up to half a second): not on the event loop.
            if not await run_in_threadpool(sync.stop):
                _logger.info("%r: the sync thread is still finishing a connect; it applies nothing more", sync)

    return ferroflag_lifespan


# --- context and per-request flags --------------------------------------------------------------------


def header_context(request: HTTPConnection) -> EvalContext:
    """The context from the request headers (`CONTEXT_HEADERS`); a missing header reads as `""`.

    An explicit choice, `setup(app, evaluator, context=header_context)`, for one trust assumption:
    a proxy in front of the app (an API gateway that authenticates the user, Cloudflare for
    `cf-ipcountry`) sets these headers and removes whatever a client sent under those names. Without
    such a proxy any client chooses its own flags: `curl -H 'x-plan: enterprise'` gets the enterprise
    ones.
    """
    fields: dict[str, str] = {}
    for name, value in request.scope["headers"]:  # one pass over the raw headers (lower-case names)
        field = _HEADER_FIELDS.get(name)
        if field is not None and field not in fields:  # the first one wins, as in `request.headers[...]`
            fields[field] = value.decode("latin-1")
    get = fields.get
    return EvalContext(get("user_id", ""), email=get("email", ""), plan=get("plan", ""), country=get("country", ""))


_NO_CONTEXT = (
    "ferroflag: this app has no flag context, so {what} cannot tell who the request is for. Say it once: "
    "setup(app, evaluator, context=...) with flag_deps = FlagDependencies(context=your_function) (built "
    "from your logged-in user; then gate with flag_deps.require_flag(...)), or with a function of the request. "
    "context=header_context reads x-user-id, x-plan... from the request headers, which any client can "
    "send: only behind a proxy that sets them."
)


def _unsolvable(state: FerroflagFastAPI, what: str) -> RuntimeError:
    if state.context is None:
        return RuntimeError(_NO_CONTEXT.format(what=what))
    return RuntimeError(
        f"{what} cannot evaluate for this app's context: setup(context=...) was given "
        f"{state.context!r}, whose context is built from other dependencies, which only that "
        "FlagDependencies can have FastAPI solve. Use its methods: flag_deps.require_flag(...), "
        "flag_deps.get_flags, flag_deps.feature_gate(...), flag_deps.get_client_flags"
    )


async def get_context(request: Request) -> EvalContext:
    """The request's context: the app's `setup(context=...)` function of the request.

    The context of the module-level dependencies. A test may replace it like any dependency:
    `app.dependency_overrides[get_context] = lambda: EvalContext("u1")`.

    Raises:
        RuntimeError: The app is not set up, or its context is a `FlagDependencies` whose context
            takes other dependencies (use that object's dependencies instead).
    """
    state = _set_up(request.app)
    if state._context is None:
        raise _unsolvable(state, "ferroflag.fastapi.get_context (and require_flag, FlagsDep, feature_gate)")
    return await state._context(request)


ContextDep = Annotated[EvalContext, Depends(get_context)]
"""The request's `EvalContext`, as a parameter type: `async def handler(ctx: ContextDep)`."""


class Flags(RequestFlagsBase):
    """The flags of one request: one evaluator, one context, and each flag evaluated at most once.

    Given by `get_flags` (`FlagsDep`), shared by every dependency of the request that asks for it.
    """

    __slots__ = ("_context", "_evaluator")

    def __init__(self, evaluator: FlagEvaluator, context: EvalContext) -> None:
        super().__init__()
        self._evaluator = evaluator
        self._context = context

    @property
    def context(self) -> EvalContext:
        """The context every flag of this request is evaluated for."""
        return self._context

    @property
    def evaluator(self) -> FlagEvaluator:
        """The evaluator answering (the test evaluator when one is bound to the app)."""
        return self._evaluator

    def evaluate(self, key: str) -> EvalResult:
        """The flag's `EvalResult` for this request (evaluated on first use, then remembered)."""
        result = self._cache.get(key)
        if result is None:
            result = self._cache[key] = self._evaluator.evaluate(key, self._context)
        return result

    def __repr__(self) -> str:
        return f"<Flags context={self._context!r} evaluated={sorted(self._cache)!r}>"


def _flags(request: Request, state: FerroflagFastAPI, context: object) -> Flags:
    if not isinstance(context, EvalContext):
        raise TypeError(f"the ferroflag context function must return an EvalContext, got {type(context).__name__}")
    return Flags(_evaluator_for(request.app, state), context)


async def get_flags(request: Request, context: ContextDep) -> Flags:
    """The request's `Flags` for `get_context`'s context; FastAPI caches it for the request."""
    return _flags(request, _set_up(request.app), context)


FlagsDep = Annotated[Flags, Depends(get_flags)]
"""The request's `Flags`, as a parameter type: `async def handler(flags: FlagsDep)`."""


# --- what a browser may see ---------------------------------------------------------------------------


def client_flags(flags: Flags) -> ClientFlags:
    """The flags this request's browser may see, for a bootstrap payload (`window.FLAGS = ...`).

    Only the flags whose `metadata` has `"client": true` are in it, so flag names and values meant
    for the server stay there; each is evaluated through `flags` (so recorded in `flags.evaluated()`,
    like any flag the request asked about). The result is JSON-ready::

        {"new-checkout": {"enabled": True, "variant": "v2", "value": {"max_items": 50}}, ...}

    `value` is the flag's value for this answer (docs/spec.md §2.2), or None when it carries none.
    """
    if not isinstance(flags, Flags):
        raise TypeError(f"client_flags() takes the request's Flags, got {type(flags).__name__}")
    payload: ClientFlags = {}
    for key in client_flag_keys(flags.evaluator):
        result = flags.evaluate(key)
        if result.reason != "not_found":  # removed by an update since the keys were read
            payload[key] = {"enabled": result.enabled, "variant": result.variant, "value": result.value}
    return payload


async def get_client_flags(flags: FlagsDep) -> ClientFlags:
    """`client_flags()` of the request's `Flags`, as a dependency (see `ClientFlagsDep`)."""
    return client_flags(flags)


ClientFlagsDep = Annotated[ClientFlags, Depends(get_client_flags)]
"""The bootstrap payload as a parameter type: `async def bootstrap(payload: ClientFlagsDep)`."""


# --- gating -------------------------------------------------------------------------------------------


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError(f"flag key must be a non-empty str, got {key!r}")


def _check_default(default: object) -> None:
    if not isinstance(default, bool):
        raise TypeError(f"default must be True or False (the answer for an unknown flag), got {default!r}")


class FlagRequirement:
    """A dependency that lets the request through only when a flag is on; see `require_flag()`."""

    def __init__(
        self,
        key: str,
        status_code: int = 404,
        detail: Any = _DETAIL,
        headers: Mapping[str, str] | None = None,
        flags_dependency: Callable[..., Awaitable[Flags]] = get_flags,
        default: bool = False,
    ) -> None:
        _check_key(key)
        _check_default(default)
        self.key = key
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers is not None else None
        self.default = default
        # What FastAPI reads instead of __call__'s own signature: the flags come from this object's source.
        flags = inspect.Parameter("flags", _POSITIONAL[1], default=Depends(flags_dependency), annotation=Flags)
        self.__signature__ = inspect.Signature([flags], return_annotation=EvalResult)

    async def __call__(self, flags: Flags) -> EvalResult:
        result = flags.evaluate(self.key)
        if not (result.enabled or (self.default and result.reason == "not_found")):
            raise HTTPException(status_code=self.status_code, detail=self.detail, headers=self.headers)
        return result

    def __repr__(self) -> str:
        default = ", default=True" if self.default else ""
        return f"require_flag({self.key!r}, status_code={self.status_code!r}, detail={self.detail!r}{default})"


def require_flag(
    key: str,
    *,
    default: bool = False,
    status_code: int = 404,
    detail: Any = _DETAIL,
    headers: Mapping[str, str] | None = None,
) -> FlagRequirement:
    """A dependency that answers `status_code` with `{"detail": detail}` when the flag is off.

    Use it as `dependencies=[Depends(require_flag("new-checkout"))]` (on a route, a router or the app),
    or as a parameter, `result: Annotated[EvalResult, Depends(require_flag("new-checkout"))]`, to get
    the flag's `EvalResult` (its variant, say). For an app whose context is a `FlagDependencies`, use
    its `require_flag`.

    Arguments:
        key: The flag key.
        default: The answer while no flag has that key (`is_enabled`'s `default`): with True the
            request goes through (reason `not_found`) until the flag exists, e.g. on a cold start
            before the first sync. A flag that exists answers for itself.
        status_code: The status when the flag is off (404: the feature does not exist for this user).
        detail: The body's `detail`.
        headers: Headers for that response.
    """
    return FlagRequirement(key, status_code, detail, headers, default=default)


def feature_gate(
    key: str,
    *,
    fallback: Callable[..., Any] | None = None,
    default: bool = False,
    status_code: int = 404,
    detail: Any = _DETAIL,
    flags_dependency: Callable[..., Awaitable[Flags]] = get_flags,
) -> Callable[[_F], _F]:
    """Decorates an endpoint (sync or async) so that it runs only when the flag is on.

    When the flag is off, `fallback` is called with the same arguments (sync or async, independently
    of the endpoint); without a fallback the request is answered as `require_flag()` does. `default`
    is the answer while no flag has that key. Put it below the route decorator, so that the route
    registers the gated function::

        @app.get("/search")
        @feature_gate("search-v2", fallback=search_v1)
        async def search_v2(q: str, flags: FlagsDep) -> Results: ...

    Above the route decorator it would gate nothing (the route already holds the plain endpoint), so
    it raises `TypeError` there when it can see the router (a name in the decorating module or function).

    The endpoint keeps its signature for FastAPI (parameters, OpenAPI schema, return type); a hidden
    keyword-only parameter brings the request's `Flags` (from `flags_dependency`).

    Raises:
        TypeError: The key is empty, `default` is not a bool, the fallback cannot take the endpoint's
            arguments, the endpoint is gated already, or it is a route's endpoint already.
    """
    _check_key(key)
    _check_default(default)

    def decorate(endpoint: _F) -> _F:
        if registered_as_route(endpoint, sys._getframe(1)):
            name = getattr(endpoint, "__qualname__", repr(endpoint))
            short = getattr(endpoint, "__name__", "endpoint")
            raise TypeError(
                f"@feature_gate({key!r}) is above the route decorator of {name}: the route already serves the "
                "ungated endpoint. Put it below, between the route decorator and the function:\n"
                f'    @app.get("/path")\n    @feature_gate({key!r})\n    async def {short}(...): ...'
            )
        try:
            # Resolved here, in the endpoint's module: older FastAPI (0.110, for one) resolves string
            # annotations in the wrapper's globals (this module's), where the endpoint's names are not.
            signature = inspect.signature(endpoint, eval_str=True)
        except NameError:  # a name defined later or only under TYPE_CHECKING: left for FastAPI to resolve
            signature = inspect.signature(endpoint)
        params = list(signature.parameters.values())
        if _FLAGS_PARAM in signature.parameters:
            raise TypeError(f"{endpoint.__qualname__} is already gated by feature_gate()")
        if fallback is not None:
            try:
                inspect.signature(fallback).bind(**{p.name: None for p in params if p.kind is not p.VAR_KEYWORD})
            except TypeError as e:
                raise TypeError(
                    f"fallback {fallback!r} cannot take the arguments of {endpoint.__qualname__}: {e}"
                ) from None
        extra = inspect.Parameter(
            _FLAGS_PARAM, inspect.Parameter.KEYWORD_ONLY, default=Depends(flags_dependency), annotation=Flags
        )
        params.insert(next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params)), extra)
        gated_signature = signature.replace(parameters=params)
        endpoint_async = inspect.iscoroutinefunction(endpoint)
        fallback_async = fallback is not None and inspect.iscoroutinefunction(fallback)

        def choose(flags: Flags) -> Callable[..., Any]:
            if flags.is_enabled(key, default):
                return endpoint
            if fallback is None:
                raise HTTPException(status_code=status_code, detail=detail)
            return fallback

        wrapper: Callable[..., Any]
        if endpoint_async or fallback_async:
            # FastAPI awaits an async endpoint; a sync target then goes to the threadpool, where FastAPI would send it.
            @functools.wraps(endpoint)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                target = choose(kwargs.pop(_FLAGS_PARAM))
                if endpoint_async if target is endpoint else fallback_async:
                    return await target(*args, **kwargs)
                return await run_in_threadpool(target, *args, **kwargs)

            wrapper = async_wrapper
        else:

            @functools.wraps(endpoint)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return choose(kwargs.pop(_FLAGS_PARAM))(*args, **kwargs)

            wrapper = sync_wrapper
        cast("Any", wrapper).__signature__ = gated_signature
        return cast("_F", wrapper)

    return decorate


# --- a context from other dependencies -----------------------------------------------------------------


def _serves(state: FerroflagFastAPI, owner: FlagDependencies) -> bool:
    """Whether the dependencies of `owner` evaluate for the app's context: it is the app's context, or
    built on the same function, or the app has none (then it is the only context the app uses; the
    module-level dependencies raise there)."""
    return state.context is None or state.context is owner or state._context_function is owner.context


class FlagDependencies:
    """The flag dependencies of an app whose context is built by a dependency of your own (which may use
    `Depends`: the authenticated user), and that context for `setup()`.

    FastAPI solves dependencies from the signatures it sees when a route is declared, so a context
    made from the authenticated user has to be part of the flag dependencies themselves. Build one
    of these once, next to your auth dependencies, give it to `setup()`, and gate with its methods
    (they share the per-request `Flags` among themselves)::

        async def flag_context(user: Annotated[User, Depends(current_user)]) -> EvalContext:
            return EvalContext(user.id, email=user.email, plan=user.plan)

        flag_deps = FlagDependencies(context=flag_context)
        UserFlags = Annotated[Flags, Depends(flag_deps.get_flags)]
        setup(app, evaluator, context=flag_deps)

        @app.get("/beta", dependencies=[Depends(flag_deps.require_flag("beta"))])
        async def beta(flags: UserFlags) -> ...: ...

    The evaluator is still the app's (`setup()`, or a bound test evaluator), so one `FlagDependencies`
    serves any number of apps; on an app set up with another context its dependencies raise
    `RuntimeError` at the first request (one app, one context).
    `FlagDependencies()` without a context is the module-level set (the app's context).

    Attributes:
        context: Your context function, or None.
        get_context: The context dependency (your function, or the module's `get_context`).
        get_flags: The dependency giving the request's `Flags` for that context.
        get_client_flags: The dependency giving `client_flags()` of those `Flags`.
    """

    __slots__ = ("context", "get_client_flags", "get_context", "get_flags")

    def __init__(self, context: ContextFunction | None = None) -> None:
        self.context: Callable[..., Any] | None = context
        if context is None:
            self.get_context: Callable[..., Any] = get_context
            self.get_flags: Callable[..., Awaitable[Flags]] = get_flags
            self.get_client_flags: Callable[..., Awaitable[ClientFlags]] = get_client_flags
            return
        if not callable(context):
            raise TypeError(f"context must be a function, got {type(context).__name__}")
        self.get_context = context
        owner = self

        async def get_flags_for(request: Request, context: EvalContext) -> Flags:
            state = _set_up(request.app)
            if not _serves(state, owner):
                raise RuntimeError(
                    f"{owner!r} is not this app's context: setup(context=...) was given {state.context!r}. "
                    "One app, one context: pass this FlagDependencies to setup(), or use the dependencies "
                    "of the one you passed"
                )
            return _flags(request, state, context)

        name = getattr(context, "__qualname__", context)
        request_param = inspect.Parameter("request", _POSITIONAL[1], annotation=Request)
        context_param = inspect.Parameter("context", _POSITIONAL[1], default=Depends(context), annotation=EvalContext)
        cast("Any", get_flags_for).__signature__ = inspect.Signature([request_param, context_param])
        get_flags_for.__qualname__ = f"FlagDependencies.get_flags[{name!s}]"
        cast("Any", get_flags_for)._ferroflag_owner = owner  # for the startup check of the app's routes
        self.get_flags = get_flags_for

        async def get_client_flags_for(flags: Flags) -> ClientFlags:
            return client_flags(flags)

        flags_param = inspect.Parameter("flags", _POSITIONAL[1], default=Depends(get_flags_for), annotation=Flags)
        cast("Any", get_client_flags_for).__signature__ = inspect.Signature([flags_param])
        get_client_flags_for.__qualname__ = f"FlagDependencies.get_client_flags[{name!s}]"
        self.get_client_flags = get_client_flags_for

    def require_flag(
        self,
        key: str,
        *,
        default: bool = False,
        status_code: int = 404,
        detail: Any = _DETAIL,
        headers: Mapping[str, str] | None = None,
    ) -> FlagRequirement:
        """`require_flag()`, for this context."""
        return FlagRequirement(key, status_code, detail, headers, self.get_flags, default)

    def feature_gate(
        self,
        key: str,
        *,
        fallback: Callable[..., Any] | None = None,
        default: bool = False,
        status_code: int = 404,
        detail: Any = _DETAIL,
    ) -> Callable[[_F], _F]:
        """`feature_gate()`, for this context."""
        return feature_gate(
            key,
            fallback=fallback,
            default=default,
            status_code=status_code,
            detail=detail,
            flags_dependency=self.get_flags,
        )

    def __repr__(self) -> str:
        return f"FlagDependencies(context={self.context!r})"
