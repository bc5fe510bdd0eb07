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
on the loop builds in place only when that needs no I/O (the view already did `await request.auser()`,
or there is no `request.user`), and otherwise raises `SynchronousOnlyOperation`, whatever the user, so a missing
`aload()` shows in the first test rather than for the first logged-in visitor.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.functional import LazyObject, empty

from ferroflag import EvalContext, EvalResult, FlagEvaluator, testing
from ferroflag._request_flags import RequestFlagsBase
from ferroflag.django import (
    _aawait_first_load,
    _aprepared,
    _await_first_load,
    _Loaded,
    _prepared,
    _rt,
    _settings,
    get_evaluator,
)

__all__ = [
    "FlagHttpRequest",
    "FlagMiddleware",
    "RequestFlags",
    "aflags_for",
    "anonymous_id",
    "flags_for",
    "refers_to_groups",
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
            await _aawait_first_load(loaded)  # the first flag use in the process waits off the loop
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
        if result.reason == "not_found":
            _missing(key)
        return result

    def __repr__(self) -> str:  # never builds the context
        who = "(context not loaded)" if self._context is None else repr(self._context)
        return f"<RequestFlags for {who}, {len(self._cache)} evaluated>"


class FlagHttpRequest(HttpRequest):
    """For annotations only: an `HttpRequest` that went through `FlagMiddleware`."""

    flag_context: EvalContext
    """A lazy stand-in (a `LazyObject`, as `request.user` is) for `flags.context`: reads, `==` and `isinstance`
    work as on an `EvalContext`; pass `request.flags.context` where a real one is needed (`FlagEvaluator` methods)."""
    flags: RequestFlags


_logger = logging.getLogger("ferroflag.django")
_missing_logged: set[str] = set()
_MISSING_LOG_LIMIT = 1000  # keys logged per process: a bound, should code build keys from input


def _missing(key: str) -> None:
    """With `LOG_MISSING`, logs the first time in this process that a flag no source defines is asked
    (as django-waffle's missing-flag log): usually a typo, or a flag not yet created where it is served."""
    if key in _missing_logged or len(_missing_logged) >= _MISSING_LOG_LIMIT or not _settings().log_missing:
        return
    _missing_logged.add(key)
    _logger.warning("ferroflag: flag %r is not defined by the flag source; it answers its default", key)


def user_context(request: HttpRequest, user: Any) -> EvalContext:
    """The default `CONTEXT` builder.

    For a signed-in user: the id (`pk`), `email`, `plan` and `country` when the user model has them, and
    the properties `is_authenticated`, `is_staff`, `is_superuser` and, only when some loaded flag or
    segment refers to the attribute `groups`, `groups` (the names of the user's groups: a list attribute,
    docs/spec.md §4; one query). For an anonymous visitor (or a request without `request.user`): the
    visitor's stable id from the `ANONYMOUS_COOKIE` (see `anonymous_id`) as `user_id`, so percentage
    rollouts split anonymous traffic too, and `is_authenticated` etc. false.
    """
    return _user_context(request, user, _group_names(user) if _wants_groups(user) else None)


def _user_context(request: HttpRequest, user: Any, groups: list[str] | None) -> EvalContext:
    if user is None or not user.is_authenticated:
        return EvalContext(anonymous_id(request), properties=_ANONYMOUS_PROPERTIES)
    plan = getattr(user, "plan", None)
    country = getattr(user, "country", None)
    properties: dict[str, bool | list[str]] = {
        "is_authenticated": True,
        "is_staff": bool(getattr(user, "is_staff", False)),
        "is_superuser": bool(getattr(user, "is_superuser", False)),
    }
    if groups is not None:
        properties["groups"] = groups
    return EvalContext(
        str(user.pk),
        email=getattr(user, "email", None) or "",
        plan="" if plan is None else str(plan),
        country="" if country is None else str(country),
        properties=properties,
    )


_ANONYMOUS_PROPERTIES = {"is_authenticated": False, "is_staff": False, "is_superuser": False}
_ANONYMOUS_ATTR = "_ferroflag_anonymous_id"  # on the request: (the id, whether it is new)
_ANONYMOUS_ID = re.compile(r"[0-9a-f]{32}")


def anonymous_id(request: HttpRequest) -> str:
    """An anonymous visitor's stable id: the `ANONYMOUS_COOKIE`'s value, or a new random one that
    `FlagMiddleware` sends as that cookie with the response (HttpOnly, SameSite=Lax, Secure on HTTPS).
    `""` when `ANONYMOUS_COOKIE` is None. One id per request, however often it is asked."""
    known: tuple[str, bool] | None = request.__dict__.get(_ANONYMOUS_ATTR)
    if known is not None:
        return known[0]
    name = _settings().anonymous_cookie
    if name is None:
        value, new = "", False
    else:
        value = request.COOKIES.get(name, "")
        new = _ANONYMOUS_ID.fullmatch(value) is None  # absent or not one of ours: a fresh id
        if new:
            value = uuid.uuid4().hex
    request.__dict__[_ANONYMOUS_ATTR] = (value, new)
    return value


def _send_anonymous_cookie(request: HttpRequest, response: HttpResponseBase) -> None:
    known: tuple[str, bool] | None = request.__dict__.get(_ANONYMOUS_ATTR)
    if known is None or not known[0]:
        return
    patch_vary_headers(response, ("Cookie",))  # the page's flags depend on the cookie
    if known[1]:
        config = _settings()
        assert config.anonymous_cookie is not None  # an id was made, so the cookie is on
        response.set_cookie(
            config.anonymous_cookie,
            known[0],
            max_age=int(config.anonymous_cookie_age),
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )


# The evaluator whose document was last scanned for `groups`, its version, and the answer.
_groups_scan: tuple[FlagEvaluator | None, int, bool] = (None, -1, False)


def refers_to_groups(evaluator: FlagEvaluator) -> bool:
    """Whether a flag or segment of the evaluator's current document reads the attribute `groups` (a
    condition on it, or `bucket_by`). Scanned once per snapshot version."""
    global _groups_scan
    cached, version, answer = _groups_scan
    current = evaluator.version
    if cached is evaluator and version == current:
        return answer
    document = evaluator.document()
    answer = any(flag.get("bucket_by") == "groups" for flag in document.get("flags", ()))
    for item in (*document.get("flags", ()), *document.get("segments", ())):
        if answer:
            break
        answer = any(
            condition.get("attribute") == "groups"
            for rule in item.get("rules") or ()
            for condition in rule.get("conditions") or ()
        )
    _groups_scan = (evaluator, current, answer)
    return answer


def _wants_groups(user: Any) -> bool:
    return user is not None and bool(user.is_authenticated) and refers_to_groups(get_evaluator())


def _group_names(user: Any) -> list[str]:
    """The names of the user's groups (one query); [] for a user model without groups."""
    groups = getattr(user, "groups", None)
    if groups is None:
        return []
    return [str(name) for name in groups.values_list("name", flat=True)]


def _as_context(value: object) -> EvalContext:
    if isinstance(value, EvalContext):
        return value
    if isinstance(value, Mapping):
        return EvalContext(**value)
    raise TypeError(f"the FERROFLAG CONTEXT builder returned {type(value).__name__}, not an EvalContext or dict")


def _resolved(user: Any) -> Any:
    """The object behind `request.user`'s `SimpleLazyObject`, looked up now if it was not yet.

    The one use of Django internals left here (`_wrapped`, `_setup`), kept for a measured cost: the default
    builder reads about ten attributes of the user, and through the proxy (whose every read checks
    `_wrapped` in Python) that is 19.7 µs against 1.6 µs on the user itself (`user_context`, Django 5.2,
    CPython 3.11), per signed-in request that asks a flag. Should the layout change, the proxy is used."""
    if isinstance(user, LazyObject):
        try:
            if user._wrapped is empty:
                user._setup()
            return user._wrapped
        except AttributeError:  # not the LazyObject layout this was written against
            return user
    return user


_UNKNOWN: Any = object()
_AUSER_ATTR = "_ferroflag_auser"  # on the request: the user `await request.auser()` gave (see `_record_auser`)


def _record_auser(request: HttpRequest) -> None:
    """Wraps `request.auser` (the public method AuthenticationMiddleware sets) to keep what it returns, so
    a view that did `await request.auser()` can use `request.flags` on the event loop without `aload()`."""
    auser = getattr(request, "auser", None)
    if auser is None:
        return

    async def recording_auser() -> Any:
        user = await auser()
        request.__dict__[_AUSER_ATTR] = user
        return user

    request.auser = recording_auser


def _known_user(request: HttpRequest) -> Any:
    """The request's user if finding it needs no I/O: None without `request.user`, a `request.user` that is
    not lazy, the user `await request.auser()` gave, or `_UNKNOWN`. Whether Django's lazy `request.user`
    was evaluated is not asked (it has no public way to tell): on an event loop that counts as unknown."""
    user = getattr(request, "user", None)
    if not isinstance(user, LazyObject):
        return user
    return request.__dict__.get(_AUSER_ATTR, _UNKNOWN)


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
        io = user is _UNKNOWN or (loaded.builder is user_context and _wants_groups(user))
        unsafe = io and not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        if unsafe or loaded.builder_is_async:
            raise SynchronousOnlyOperation(
                "request.flags (or request.flag_context) was first used on an event loop before its context was "
                "loaded, which would look the user up (or run an async CONTEXT builder) on the loop: call "
                "`await request.flags.aload()` in the async view first (@flag_required and FlagRequiredMixin do)."
            )
    if user is _UNKNOWN:
        user = _resolved(request.user)
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
    if loaded.builder is user_context:  # the groups query, when there is one, off the loop
        groups = await sync_to_async(_group_names)(user) if _wants_groups(user) else None
        return _user_context(request, user, groups)
    value = loaded.builder(request, user)
    if inspect.isawaitable(value):
        value = await value
    return _as_context(value)


if TYPE_CHECKING:
    _LazyBase = LazyObject[EvalContext]
else:
    _LazyBase = LazyObject  # not subscriptable at run time


class _LazyContext(_LazyBase):
    """`request.flag_context`: a lazy stand-in for `RequestFlags.context` (LazyObject's subclass protocol:
    `_setup()` sets `_wrapped`), built at its first read, shared with `request.flags`."""

    def __init__(self, flags: RequestFlags) -> None:
        self.__dict__["_flags"] = flags  # in __dict__: LazyObject forwards other attribute writes
        super().__init__()

    def _setup(self) -> None:
        self._wrapped = self.__dict__["_flags"]._build()

    def __repr__(self) -> str:  # never builds the context
        flags: RequestFlags = self.__dict__["_flags"]
        return f"<flag_context: {repr(flags.context) if flags.loaded else 'not loaded yet'}>"

    def __copy__(self) -> EvalContext:  # an EvalContext is immutable: a copy is the context itself
        context: EvalContext = self.__dict__["_flags"].context
        return context

    def __deepcopy__(self, memo: dict[int, Any]) -> EvalContext:
        return self.__copy__()


def _attach(request: HttpRequest, loaded: _Loaded) -> RequestFlags:
    """Sets `request.flags` and `request.flag_context`, both lazy: nothing is looked up yet."""
    flags = RequestFlags._deferred(request, loaded)
    typed = cast("FlagHttpRequest", request)
    typed.flags = flags
    typed.flag_context = cast("EvalContext", _LazyContext(flags))
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
        _record_auser(request)
    return await flags.aload()


def _flags_in(loaded: _Loaded) -> bool:
    """`REQUIRE_FLAGS`: whether the source's first load is in, waiting for it (until the process's one
    deadline) the first time. Once it is in, this is one attribute read a request."""
    if _rt.required_ok or loaded.source is None or testing.current() is not None:
        return True
    _await_first_load(loaded)
    if loaded.source.status().ready:
        _rt.required_ok = True
        return True
    return False


def _unavailable() -> HttpResponse:
    response = HttpResponse(
        "Service unavailable: the feature flags have not been loaded yet.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = "5"
    return response


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
        loaded = _prepared()
        if loaded.config.require_flags and not _flags_in(loaded):
            return _unavailable()
        _attach(request, loaded)
        response: HttpResponseBase = self.get_response(request)
        _send_anonymous_cookie(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        loaded = await _aprepared()
        if loaded.config.require_flags and not await sync_to_async(_flags_in, thread_sensitive=False)(loaded):
            return _unavailable()
        _attach(request, loaded)
        _record_auser(request)
        response: HttpResponseBase = await self.get_response(request)
        _send_anonymous_cookie(request, response)
        return response
