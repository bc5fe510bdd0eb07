"""`FlagMiddleware`: `request.flag_context` and a lazy, per-request `request.flags`.

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "ferroflag.django.middleware.FlagMiddleware",  # after authentication: it reads the user
    ]

The middleware resolves the user (`request.user`, or `await request.auser()` under ASGI, so the
context builder does no I/O on the event loop), builds `request.flag_context` with the `CONTEXT`
builder, and sets `request.flags`, which evaluates nothing until it is asked and then evaluates
each flag at most once per request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import LazyObject, empty

from ferroflag import EvalContext, EvalResult, FlagEvaluator
from ferroflag.django import _aprepared, _Loaded, _prepared, get_evaluator

__all__ = [
    "FlagHttpRequest",
    "FlagMiddleware",
    "RequestFlags",
    "aflags_for",
    "flags_for",
    "user_context",
]


class RequestFlags:
    """The flags of one request: `request.flags`.

    Nothing is evaluated (and the evaluator is not even looked up) until a method is called; each
    flag is then evaluated once and the answer reused for the rest of the request, so a page that
    asks about one flag in the view, a template and a decorator gets one consistent answer.
    """

    __slots__ = ("_cache", "_evaluator", "context")

    def __init__(self, context: EvalContext, evaluator: FlagEvaluator | None = None) -> None:
        self.context = context
        """Who the flags are evaluated for (the same object as `request.flag_context`)."""
        self._evaluator = evaluator
        self._cache: dict[str, EvalResult] = {}

    def evaluate(self, key: str) -> EvalResult:
        """The full answer for `key` (enabled, variant, reason)."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        evaluator = self._evaluator
        if evaluator is None:
            evaluator = self._evaluator = get_evaluator()
        result = self._cache[key] = evaluator.evaluate(key, self.context)
        return result

    def is_enabled(self, key: str, default: bool = False) -> bool:
        """Whether `key` is on for this request; `default` when there is no such flag."""
        result = self.evaluate(key)
        return default if result.reason == "not_found" else result.enabled

    def variant(self, key: str) -> str:
        """The variant of `key` for this request, `""` when it is off or unknown."""
        return self.evaluate(key).variant

    def evaluated(self) -> dict[str, EvalResult]:
        """The flags this request has asked about so far, with their answers (e.g. for exposure logs)."""
        return dict(self._cache)

    def __contains__(self, key: object) -> bool:
        """`"key" in request.flags` is `is_enabled("key")`."""
        return isinstance(key, str) and self.is_enabled(key)

    def __repr__(self) -> str:
        return f"<RequestFlags for {self.context!r}, {len(self._cache)} evaluated>"


class FlagHttpRequest(HttpRequest):
    """For annotations only: an `HttpRequest` that went through `FlagMiddleware`."""

    flag_context: EvalContext
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


def _build_context(loaded: _Loaded, request: HttpRequest) -> EvalContext:
    user = _resolved(getattr(request, "user", None))
    if loaded.builder_is_async:
        return _as_context(async_to_sync(cast("Callable[..., Awaitable[Any]]", loaded.builder))(request, user))
    return _as_context(loaded.builder(request, user))


def _forced_user(request: HttpRequest) -> Any:
    user = request.user
    _ = user.is_authenticated  # evaluates the lazy object here, in a worker thread
    return user


async def _abuild_context(loaded: _Loaded, request: HttpRequest) -> EvalContext:
    auser = getattr(request, "auser", None)
    if auser is not None:
        user = await auser()
    elif hasattr(request, "user"):  # Django < 5.0: no auser()
        user = await sync_to_async(_forced_user)(request)
    else:
        user = None
    value = loaded.builder(request, user)
    if inspect.isawaitable(value):
        value = await value
    return _as_context(value)


def _attach(request: HttpRequest, context: EvalContext) -> RequestFlags:
    flags = RequestFlags(context)
    typed = cast("FlagHttpRequest", request)
    typed.flag_context = context
    typed.flags = flags
    return flags


def flags_for(request: HttpRequest) -> RequestFlags:
    """`request.flags`, set up now when `FlagMiddleware` did not run (sync code only)."""
    flags = getattr(request, "flags", None)
    if isinstance(flags, RequestFlags):
        return flags
    return _attach(request, _build_context(_prepared(), request))


async def aflags_for(request: HttpRequest) -> RequestFlags:
    """`flags_for()` for async code: the user and the sync start are resolved off the event loop."""
    flags = getattr(request, "flags", None)
    if isinstance(flags, RequestFlags):
        return flags
    return _attach(request, await _abuild_context(await _aprepared(), request))


class FlagMiddleware:
    """Sets `request.flag_context` and `request.flags`; sync- and async-capable.

    The first request in each process starts the sync (see `ferroflag.django`); under ASGI that
    start, and the user lookup, happen off the event loop.
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
        _attach(request, _build_context(_prepared(), request))
        response: HttpResponseBase = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        _attach(request, await _abuild_context(await _aprepared(), request))
        response: HttpResponseBase = await self.get_response(request)
        return response
