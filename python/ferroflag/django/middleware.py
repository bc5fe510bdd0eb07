"""`FlagMiddleware`: a lazy, per-request `request.flags` and `request.flag_context`.

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "ferroflag.django.middleware.FlagMiddleware",  # after authentication: it reads the user
    ]

The middleware does no per-request work beyond setting two attributes: nothing (not the user, not the
`CONTEXT` builder, not a flag) is looked at until the request first asks `request.flags` or reads
`request.flag_context`, so a view that never asks about a flag costs no user lookup and no query.

In sync code the context is built at that first use. On an event loop (an `async def` view) a user
lookup would be blocking I/O, so async code loads the context first with `await request.flags.aload()`
(the decorators do it): that resolves the user with `await request.auser()`. A synchronous first use
on the loop builds in place only when that needs no I/O (the user is already resolved, or there is no
`request.user`), and otherwise raises `SynchronousOnlyOperation`, whatever the user, so a missing
`aload()` shows in the first test rather than for the first logged-in visitor.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import LazyObject, SimpleLazyObject, empty

from ferroflag import EvalContext, EvalResult, FlagEvaluator
from ferroflag._request_flags import RequestFlagsBase
from ferroflag.django import _aprepared, _Loaded, _prepared, get_evaluator

__all__ = [
    "FlagHttpRequest",
    "FlagMiddleware",
    "RequestFlags",
    "aflags_for",
    "flags_for",
    "user_context",
]


class RequestFlags(RequestFlagsBase):
    """The flags of one request: `request.flags`.

    Nothing is evaluated (and the evaluator is not even looked up) until a method is called; each
    flag is then evaluated once and the answer reused for the rest of the request, so a page that
    asks about one flag in the view, a template and a decorator gets one consistent answer.

    Set up by `FlagMiddleware`, it also builds its context on first use (see `context`); built
    directly, as `RequestFlags(context)`, it uses the context it is given.
    """

    __slots__ = ("_context", "_evaluator", "_loaded", "_request")

    def __init__(self, context: EvalContext, evaluator: FlagEvaluator | None = None) -> None:
        super().__init__()
        self._context: EvalContext | None = context
        self._evaluator = evaluator
        self._request: HttpRequest | None = None
        self._loaded: _Loaded | None = None

    @classmethod
    def _deferred(cls, request: HttpRequest, loaded: _Loaded) -> RequestFlags:
        """Flags whose context `loaded.builder` builds for `request` when first needed."""
        flags = cls.__new__(cls)
        flags._context = None
        flags._evaluator = None
        flags._cache = {}
        flags._request = request
        flags._loaded = loaded
        return flags

    @property
    def context(self) -> EvalContext:
        """Who the flags are evaluated for: a real `EvalContext` (what `request.flag_context` stands for),
        built by the `CONTEXT` builder on first use.

        Raises:
            SynchronousOnlyOperation: Read first on an event loop, before `aload()`, when building it
                would need I/O (looking the user up).
        """
        context = self._context
        return context if context is not None else self._build()

    def _build(self) -> EvalContext:
        context = self._context
        if context is not None:  # already built: `request.flag_context`'s first read comes here
            return context
        request, loaded = self._request, self._loaded
        if request is None or loaded is None:  # unreachable: a RequestFlags has one or the other
            raise RuntimeError("RequestFlags has neither a context nor a request to build one from")
        context = _build_context(loaded, request)
        self._context, self._request = context, None  # the request is not needed any more
        return context

    async def aload(self) -> RequestFlags:
        """Builds the context now, off the event loop where it needs I/O (`await request.auser()`, an
        `async def` builder), so the synchronous methods can then be used in async code. Idempotent
        and cheap once loaded; the decorators call it.

        Returns:
            These flags, so that `flags = await request.flags.aload()` reads well.
        """
        if self._context is None:
            request, loaded = self._request, self._loaded
            if request is None or loaded is None:  # unreachable, as in `_build()`
                raise RuntimeError("RequestFlags has neither a context nor a request to build one from")
            context = await _abuild_context(loaded, request)
            if self._context is None:  # another task of the same request may have been first
                self._context, self._request = context, None
        return self

    @property
    def loaded(self) -> bool:
        """Whether the context is built (the synchronous methods then do no I/O, even on an event loop)."""
        return self._context is not None

    def evaluate(self, key: str) -> EvalResult:
        """The full answer for `key` (enabled, variant, reason)."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        context = self._context
        if context is None:
            context = self._build()
        evaluator = self._evaluator
        if evaluator is None:
            evaluator = self._evaluator = get_evaluator()
        result = self._cache[key] = evaluator.evaluate(key, context)
        return result

    def __repr__(self) -> str:  # never builds the context
        who = "(context not loaded)" if self._context is None else repr(self._context)
        return f"<RequestFlags for {who}, {len(self._cache)} evaluated>"


class FlagHttpRequest(HttpRequest):
    """For annotations only: an `HttpRequest` that went through `FlagMiddleware`."""

    flag_context: EvalContext
    """A lazy stand-in (`SimpleLazyObject`) for `flags.context`: reads, `==` and `isinstance` work as on
    an `EvalContext`; pass `request.flags.context` where a real one is needed (`FlagEvaluator` methods)."""
    flags: RequestFlags


def user_context(request: HttpRequest, user: Any) -> EvalContext:
    """The default `CONTEXT` builder: the authenticated user's id (`pk`), `email`, and `plan` and
    `country` when the user model has them; `EvalContext("")` for anonymous users and requests
    without `request.user`."""
    if user is None or not user.is_authenticated:
        return EvalContext("")
    plan = getattr(user, "plan", None)
    country = getattr(user, "country", None)
    return EvalContext(
        str(user.pk),
        email=getattr(user, "email", None) or "",
        plan="" if plan is None else str(plan),
        country="" if country is None else str(country),
    )


def _as_context(value: object) -> EvalContext:
    if isinstance(value, EvalContext):
        return value
    if isinstance(value, Mapping):
        return EvalContext(**value)
    raise TypeError(f"the FERROFLAG CONTEXT builder returned {type(value).__name__}, not an EvalContext or dict")


def _resolved(user: Any) -> Any:
    """The object behind `request.user`'s `SimpleLazyObject` (looked up now if it was not yet): each attribute
    read through the proxy costs about a microsecond, and a builder reads several."""
    if isinstance(user, LazyObject):
        try:
            if user._wrapped is empty:
                user._setup()
            return user._wrapped
        except AttributeError:  # not the LazyObject layout this was written against: use the proxy
            return user
    return user


_UNKNOWN: Any = object()


def _known_user(request: HttpRequest) -> Any:
    """The request's user if finding it needs no I/O: None without `request.user`, the user already
    looked up (through `request.user` or `await request.auser()`), or `_UNKNOWN`."""
    user = getattr(request, "user", None)
    if not isinstance(user, LazyObject):
        return user
    wrapped = user.__dict__.get("_wrapped", empty)
    if wrapped is not empty:
        return wrapped
    # `await request.auser()` (Django 5.0+) keeps its answer apart from `request.user`'s.
    return getattr(request, "_acached_user", _UNKNOWN)


def _on_event_loop() -> bool:
    """Whether this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _build_context(loaded: _Loaded, request: HttpRequest) -> EvalContext:
    """The context, built now, synchronously. On an event loop only when that needs no I/O."""
    user = _known_user(request)
    if _on_event_loop():
        # As Django's `async_unsafe`: DJANGO_ALLOW_ASYNC_UNSAFE lets the lookup run on the loop anyway.
        # An async builder never can (async_to_sync cannot run on the loop it would wait for).
        unsafe = user is _UNKNOWN and not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        if unsafe or loaded.builder_is_async:
            raise SynchronousOnlyOperation(
                "request.flags (or request.flag_context) was first used on an event loop before its context was "
                "loaded, which would look the user up (or run an async CONTEXT builder) on the loop: call "
                "`await request.flags.aload()` in the async view first (@flag_required and FlagRequiredMixin do)."
            )
    if user is _UNKNOWN:
        user = _resolved(request.user)  # _known_user() saw it
    if loaded.builder_is_async:
        return _as_context(async_to_sync(cast("Callable[..., Awaitable[Any]]", loaded.builder))(request, user))
    return _as_context(loaded.builder(request, user))


def _forced_user(request: HttpRequest) -> Any:
    user = request.user
    _ = user.is_authenticated  # evaluates the lazy object here, in a worker thread
    return user


async def _abuild_context(loaded: _Loaded, request: HttpRequest) -> EvalContext:
    user = _known_user(request)
    if user is _UNKNOWN:
        auser = getattr(request, "auser", None)
        if auser is not None:
            user = await auser()
        else:  # Django < 5.0: no auser()
            user = await sync_to_async(_forced_user)(request)
    value = loaded.builder(request, user)
    if inspect.isawaitable(value):
        value = await value
    return _as_context(value)


if TYPE_CHECKING:
    _LazyContextBase = SimpleLazyObject[EvalContext]
else:
    _LazyContextBase = SimpleLazyObject  # not subscriptable at run time


class _LazyContext(_LazyContextBase):
    """`request.flag_context`: a `SimpleLazyObject` over `RequestFlags.context`. Its `__init__` skips
    `LazyObject.__init__`, which sets `_wrapped` through the proxy's `__setattr__` (a third of a µs a request)."""

    def __init__(self, func: Callable[[], EvalContext]) -> None:
        self.__dict__.update(_setupfunc=func, _wrapped=empty)

    def __repr__(self) -> str:  # never builds the context
        wrapped = self.__dict__["_wrapped"]
        return f"<flag_context: {'not loaded yet' if wrapped is empty else repr(wrapped)}>"


def _attach(request: HttpRequest, loaded: _Loaded) -> RequestFlags:
    """Sets `request.flags` and `request.flag_context`, both lazy: nothing is looked up yet."""
    flags = RequestFlags._deferred(request, loaded)
    typed = cast("FlagHttpRequest", request)
    typed.flags = flags
    typed.flag_context = cast("EvalContext", _LazyContext(flags._build))
    return flags


def flags_for(request: HttpRequest) -> RequestFlags:
    """`request.flags`, set up now when `FlagMiddleware` did not run (its context is built on first use)."""
    flags = getattr(request, "flags", None)
    if isinstance(flags, RequestFlags):
        return flags
    return _attach(request, _prepared())


async def aflags_for(request: HttpRequest) -> RequestFlags:
    """`request.flags` for async code, loaded (`aload()`): the user and the sync start are resolved off
    the event loop, and the synchronous methods can be used afterwards."""
    flags = getattr(request, "flags", None)
    if not isinstance(flags, RequestFlags):
        flags = _attach(request, await _aprepared())
    return await flags.aload()


class FlagMiddleware:
    """Sets `request.flags` and `request.flag_context`, both lazy; sync- and async-capable.

    The first request in each process starts the sync (see `ferroflag.django`); under ASGI that
    start happens off the event loop. Nothing else is done until the request asks about a flag.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        _attach(request, _prepared())
        response: HttpResponseBase = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        _attach(request, await _aprepared())
        response: HttpResponseBase = await self.get_response(request)
        return response
