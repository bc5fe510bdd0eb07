"""FastAPI integration: flag dependencies, a gate decorator and a lifespan-managed sync (install `ferroflag[fastapi]`).

    from fastapi import Depends, FastAPI
    from ferroflag import FlagEvaluator, FlagSyncClient
    from ferroflag.fastapi import FlagsDep, feature_gate, require_flag, setup

    evaluator = FlagEvaluator()
    app = FastAPI()
    setup(app, evaluator, sync=FlagSyncClient(evaluator, "https://flags.internal"))  # started by the lifespan

    @app.get("/checkout", dependencies=[Depends(require_flag("new-checkout"))])  # 404 when off
    async def checkout(flags: FlagsDep) -> dict[str, str]:
        return {"theme": flags.variant("dark-mode")}

What it does:

- `setup(app, evaluator, sync=None, context=None)` keeps everything on `app.state` (no module
  globals), so two apps in one process can use two evaluators. With `sync` (a `FlagSyncClient` or
  `FlagFileWatcher`) the app's lifespan starts it (`start_async`, in each worker, after any fork)
  and stops it at shutdown, around your own lifespan. `sync_lifespan()` is that lifespan on its own.
- The flag dependencies evaluate for the `EvalContext` that `get_context` gives: by default read from
  the `x-user-id`, `x-user-email`, `x-plan` and `cf-ipcountry` headers, or from the app's own
  function of the request, `setup(app, evaluator, context=fn)`.
- A context built from other dependencies (the authenticated user, say) needs FastAPI to solve them,
  so it goes into the dependencies themselves: `deps = FlagDependencies(context=user_context)`, once,
  then `deps.require_flag(...)`, `deps.get_flags`, `deps.feature_gate(...)`.
- `get_flags` (alias `FlagsDep`) gives one `Flags` object per request: each flag is evaluated at most
  once per request however many dependencies and handlers ask for it.
- `require_flag(key)` is a dependency (in a route's parameters or in `dependencies=[...]`) that answers
  404 `{"detail": "Feature not available"}` when the flag is off, and gives the flag's `EvalResult` when on.
- `feature_gate(key, fallback=...)` wraps a sync or async endpoint; when the flag is off it calls the
  fallback with the same arguments (or answers 404).
- In tests, `ferroflag.testing.TestData.bind(app)` (or `ferroflag.testing.bind`) points the app at a
  test evaluator: it is preferred over the app's own, so no `app.dependency_overrides` are needed.

No middleware is installed (no `BaseHTTPMiddleware`): only the routes that use a flag dependency pay for
it, and every dependency here is `async` (no threadpool hop).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Protocol, TypeVar, cast

from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from ferroflag import EvalContext, EvalResult, FlagEvaluator, SyncStatus
from ferroflag._binding import bound_evaluator, resolve
from ferroflag._request_flags import RequestFlagsBase

__all__ = [
    "CONTEXT_HEADERS",
    "STATE_ATTRIBUTE",
    "ContextDep",
    "ContextFunction",
    "FerroflagFastAPI",
    "FlagDependencies",
    "FlagRequirement",
    "Flags",
    "FlagsDep",
    "Lifespan",
    "SyncSource",
    "feature_gate",
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


class SyncSource(Protocol):
    """A flag source the lifespan can start and stop: `FlagSyncClient` and `FlagFileWatcher` fit."""

    def start_async(self, wait: float = ...) -> Awaitable[bool]: ...
    def stop(self) -> bool: ...
    def status(self) -> SyncStatus: ...


# --- per-app state -----------------------------------------------------------------------------------


class FerroflagFastAPI:
    """What `setup()` attaches to an app (as `app.state.ferroflag`); `FerroflagFastAPI.of(app)` finds it.

    Attributes:
        evaluator: The app's evaluator (a test evaluator bound with `ferroflag.testing.bind` wins over it).
        sync: The flag source the lifespan starts and stops, if any (`sync.status()` suits a health check).
        context: The app's context function, or None for the header context.
        sync_wait: Seconds the lifespan waits for the first snapshot before the app serves anyway.
    """

    __slots__ = ("_context", "context", "evaluator", "sync", "sync_wait")

    def __init__(
        self,
        evaluator: FlagEvaluator,
        sync: SyncSource | None = None,
        context: ContextFunction | None = None,
        sync_wait: float = 5.0,
    ) -> None:
        self.evaluator = evaluator
        self.sync = sync
        self.context = context
        self.sync_wait = sync_wait
        self._context = None if context is None else _request_function(context)

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


_NOT_SET_UP = "ferroflag is not set up on this app: call ferroflag.fastapi.setup(app, evaluator) first"


def _state(app: Any) -> FerroflagFastAPI | None:
    state = getattr(app.state, STATE_ATTRIBUTE, None)
    return state if isinstance(state, FerroflagFastAPI) else None


def _evaluator_for(app: Any) -> FlagEvaluator:
    evaluator = bound_evaluator(app)
    if evaluator is not None:
        return evaluator
    state = _state(app)
    if state is None:
        raise RuntimeError(_NOT_SET_UP)
    # A TestData laid over the app's own evaluator answers from its view once a sync source wrote it.
    return resolve(state.evaluator)


def _is_request_annotation(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.rpartition(".")[2] in ("Request", "HTTPConnection")
    return annotation is inspect.Parameter.empty or (
        inspect.isclass(annotation) and issubclass(annotation, HTTPConnection)
    )


def _request_function(function: ContextFunction) -> Callable[[Request], Awaitable[EvalContext]]:
    """`function` as a coroutine function of the request.

    Raises:
        TypeError: `function` takes more than the request (a parameter with a default, a second one,
            an annotation other than `Request`/`HTTPConnection`).
    """
    try:
        params = list(inspect.signature(function, eval_str=True).parameters.values())
    except NameError:  # an annotation imported under TYPE_CHECKING: judge it by its text
        params = list(inspect.signature(function).parameters.values())
    if len(params) > 1 or any(
        param.kind not in _POSITIONAL
        or param.default is not param.empty
        or not _is_request_annotation(param.annotation)
        for param in params
    ):
        raise TypeError(
            f"setup(context=...) takes a function of the request only, got {function!r}; for a context built "
            "from other dependencies use FlagDependencies(context=...) and its require_flag/get_flags/feature_gate"
        )
    takes_request = bool(params)
    call = cast("Callable[..., Any]", function)
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
    sync: SyncSource | None = None,
    context: ContextFunction | None = None,
    sync_wait: float = 5.0,
) -> FerroflagFastAPI:
    """Attaches an evaluator (and optionally a flag source and a context function) to one app.

    Call it once per app, after `FastAPI(...)` and before serving; routes may be declared before or after.

    Arguments:
        app: The app.
        evaluator: The evaluator every flag dependency of this app reads.
        sync: A `FlagSyncClient` or `FlagFileWatcher` (not started) that keeps `evaluator` current.
            The app's lifespan starts it with `start_async(sync_wait)` before your own lifespan runs
            and stops it after your lifespan ends. A source that is not ready in time does not fail
            the start-up: it is logged, and the app serves what the evaluator has while it keeps trying.
        context: The app's context, in place of the header context, for `get_context` and so for every
            flag dependency not made by a `FlagDependencies` with a context of its own: a function
            of the `Request` (or of nothing) returning an `EvalContext`. Async, or sync (then run in
            the threadpool, as FastAPI runs sync dependencies).
        sync_wait: Seconds the lifespan waits for the first snapshot.

    Returns:
        The state stored as `app.state.ferroflag`.

    Raises:
        RuntimeError: `setup()` was already called for this app.
        TypeError: `evaluator` has no `evaluate` method, `sync` no `start_async`/`stop`/`status`, or
            `context` takes more than the request.
        ValueError: `sync_wait` is negative.
    """
    if _state(app) is not None:
        raise RuntimeError("ferroflag is already set up on this app")
    if not callable(getattr(evaluator, "evaluate", None)):
        raise TypeError(f"evaluator must be a FlagEvaluator, got {type(evaluator).__name__}")
    if sync is not None and not all(callable(getattr(sync, name, None)) for name in ("start_async", "stop", "status")):
        raise TypeError(f"sync must be a FlagSyncClient or FlagFileWatcher, got {type(sync).__name__}")
    if sync_wait < 0:
        raise ValueError(f"sync_wait must be >= 0, got {sync_wait}")
    state = FerroflagFastAPI(evaluator, sync, context, sync_wait)
    setattr(app.state, STATE_ATTRIBUTE, state)
    if sync is not None:
        app.router.lifespan_context = cast("Any", sync_lifespan(sync, app.router.lifespan_context, wait=sync_wait))
    return state


# --- lifespan ----------------------------------------------------------------------------------------


def sync_lifespan(sync: SyncSource, lifespan: Lifespan | None = None, *, wait: float = 5.0) -> Lifespan:
    """A lifespan that starts `sync` on startup and stops it on shutdown, around `lifespan`.

    `setup(app, evaluator, sync=...)` installs this for you; use it directly when you build the
    lifespan yourself: `FastAPI(lifespan=sync_lifespan(client, my_lifespan))`.

    Arguments:
        sync: A `FlagSyncClient` or `FlagFileWatcher`.
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
    """The context from the request headers (`CONTEXT_HEADERS`); a missing header reads as `""`."""
    fields: dict[str, str] = {}
    for name, value in request.scope["headers"]:  # one pass over the raw headers (lower-case names)
        field = _HEADER_FIELDS.get(name)
        if field is not None and field not in fields:  # the first one wins, as in `request.headers[...]`
            fields[field] = value.decode("latin-1")
    get = fields.get
    return EvalContext(get("user_id", ""), email=get("email", ""), plan=get("plan", ""), country=get("country", ""))


async def get_context(request: Request) -> EvalContext:
    """The request's context: the app's `setup(context=...)` function, else `header_context(request)`.

    The context of the module-level dependencies. A test may replace it like any dependency:
    `app.dependency_overrides[get_context] = lambda: EvalContext("u1")`.
    """
    state = _state(request.app)
    if state is not None and state._context is not None:
        return await state._context(request)
    return header_context(request)


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


def _flags(request: Request, context: object) -> Flags:
    if not isinstance(context, EvalContext):
        raise TypeError(f"the ferroflag context function must return an EvalContext, got {type(context).__name__}")
    return Flags(_evaluator_for(request.app), context)


async def get_flags(request: Request, context: ContextDep) -> Flags:
    """The request's `Flags` for `get_context`'s context; FastAPI caches it for the request."""
    return _flags(request, context)


FlagsDep = Annotated[Flags, Depends(get_flags)]
"""The request's `Flags`, as a parameter type: `async def handler(flags: FlagsDep)`."""


# --- gating -------------------------------------------------------------------------------------------


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise TypeError(f"flag key must be a non-empty str, got {key!r}")


class FlagRequirement:
    """A dependency that lets the request through only when a flag is on; see `require_flag()`."""

    def __init__(
        self,
        key: str,
        status_code: int = 404,
        detail: Any = _DETAIL,
        headers: Mapping[str, str] | None = None,
        flags_dependency: Callable[..., Awaitable[Flags]] = get_flags,
    ) -> None:
        _check_key(key)
        self.key = key
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers is not None else None
        # What FastAPI reads instead of __call__'s own signature: the flags come from this object's source.
        flags = inspect.Parameter("flags", _POSITIONAL[1], default=Depends(flags_dependency), annotation=Flags)
        self.__signature__ = inspect.Signature([flags], return_annotation=EvalResult)

    async def __call__(self, flags: Flags) -> EvalResult:
        result = flags.evaluate(self.key)
        if not result.enabled:
            raise HTTPException(status_code=self.status_code, detail=self.detail, headers=self.headers)
        return result

    def __repr__(self) -> str:
        return f"require_flag({self.key!r}, status_code={self.status_code!r}, detail={self.detail!r})"


def require_flag(
    key: str, *, status_code: int = 404, detail: Any = _DETAIL, headers: Mapping[str, str] | None = None
) -> FlagRequirement:
    """A dependency that answers `status_code` with `{"detail": detail}` when the flag is off.

    Use it as `dependencies=[Depends(require_flag("new-checkout"))]` (on a route, a router or the app),
    or as a parameter, `result: Annotated[EvalResult, Depends(require_flag("new-checkout"))]`, to get
    the flag's `EvalResult` (its variant, say). An unknown flag is off.

    Arguments:
        key: The flag key.
        status_code: The status when the flag is off (404: the feature does not exist for this user).
        detail: The body's `detail`.
        headers: Headers for that response.
    """
    return FlagRequirement(key, status_code, detail, headers)


def feature_gate(
    key: str,
    *,
    fallback: Callable[..., Any] | None = None,
    status_code: int = 404,
    detail: Any = _DETAIL,
    flags_dependency: Callable[..., Awaitable[Flags]] = get_flags,
) -> Callable[[_F], _F]:
    """Decorates an endpoint (sync or async) so that it runs only when the flag is on.

    When the flag is off, `fallback` is called with the same arguments (sync or async, independently
    of the endpoint); without a fallback the request is answered as `require_flag()` does. Put it
    below the route decorator, so that the route registers the gated function::

        @app.get("/search")
        @feature_gate("search-v2", fallback=search_v1)
        async def search_v2(q: str, flags: FlagsDep) -> Results: ...

    The endpoint keeps its signature for FastAPI (parameters, OpenAPI schema, return type); a hidden
    keyword-only parameter brings the request's `Flags` (from `flags_dependency`).

    Raises:
        TypeError: The key is empty, the fallback cannot take the endpoint's arguments, or the endpoint
            is gated already.
    """
    _check_key(key)

    def decorate(endpoint: _F) -> _F:
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
            if flags.is_enabled(key):
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


class FlagDependencies:
    """Flag dependencies whose context is built by a dependency of your own, which may use `Depends`.

    FastAPI solves dependencies from the signatures it sees when a route is declared, so a context
    made from the authenticated user has to be part of the flag dependencies themselves. Build one
    of these once, next to your auth dependencies, and use its methods where you would use the
    module-level functions (they share the per-request `Flags` among themselves)::

        async def flag_context(user: Annotated[User, Depends(current_user)]) -> EvalContext:
            return EvalContext(user.id, email=user.email, plan=user.plan)

        flag_deps = FlagDependencies(context=flag_context)
        UserFlags = Annotated[Flags, Depends(flag_deps.get_flags)]

        @app.get("/beta", dependencies=[Depends(flag_deps.require_flag("beta"))])
        async def beta(flags: UserFlags) -> ...: ...

    The evaluator is still the app's (`setup()`, or a bound test evaluator), so one `FlagDependencies`
    serves any number of apps. `FlagDependencies()` without a context is the module-level set.

    Attributes:
        get_context: The context dependency (your function, or the module's `get_context`).
        get_flags: The dependency giving the request's `Flags` for that context.
    """

    __slots__ = ("get_context", "get_flags")

    def __init__(self, context: ContextFunction | None = None) -> None:
        if context is None:
            self.get_context: Callable[..., Any] = get_context
            self.get_flags: Callable[..., Awaitable[Flags]] = get_flags
            return
        if not callable(context):
            raise TypeError(f"context must be a function, got {type(context).__name__}")
        self.get_context = context

        async def get_flags_for(request: Request, context: EvalContext) -> Flags:
            return _flags(request, context)

        request_param = inspect.Parameter("request", _POSITIONAL[1], annotation=Request)
        context_param = inspect.Parameter("context", _POSITIONAL[1], default=Depends(context), annotation=EvalContext)
        cast("Any", get_flags_for).__signature__ = inspect.Signature([request_param, context_param])
        get_flags_for.__qualname__ = f"FlagDependencies.get_flags[{getattr(context, '__qualname__', context)!s}]"
        self.get_flags = get_flags_for

    def require_flag(
        self, key: str, *, status_code: int = 404, detail: Any = _DETAIL, headers: Mapping[str, str] | None = None
    ) -> FlagRequirement:
        """`require_flag()`, for this context."""
        return FlagRequirement(key, status_code, detail, headers, self.get_flags)

    def feature_gate(
        self, key: str, *, fallback: Callable[..., Any] | None = None, status_code: int = 404, detail: Any = _DETAIL
    ) -> Callable[[_F], _F]:
        """`feature_gate()`, for this context."""
        return feature_gate(
            key, fallback=fallback, status_code=status_code, detail=detail, flags_dependency=self.get_flags
        )

    def __repr__(self) -> str:
        return f"FlagDependencies(context={self.get_context!r})"
