"""Gating views on a flag: `@flag_required` for function views, `FlagRequiredMixin` for class-based ones.

Both answer 404 when the flag is off for the request (the page does not exist for that user), or
hand the request to a fallback. Both use `request.flags`, so the answer is the one the rest of the
request sees; without `FlagMiddleware` they set `request.flags` up themselves. On async views they
load it first (`await request.flags.aload()`: the user is looked up off the event loop), so the view,
its fallback and its templates can then use `request.flags` synchronously.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponseBase

from ferroflag.django.middleware import aflags_for, flags_for

if TYPE_CHECKING:
    from django.views import View

    _MixinBase = View
else:
    _MixinBase = object

__all__ = ["FlagRequiredMixin", "flag_required"]

_View = TypeVar("_View", bound=Callable[..., Any])


def _not_found(key: str) -> Http404:
    return Http404(f"feature flag {key!r} is off")


def flag_required(
    key: str, *, fallback: Callable[..., Any] | None = None, default: bool = False
) -> Callable[[_View], _View]:
    """Serves the view only when flag `key` is on for the request.

    Works on sync and `async def` views (and, through `method_decorator`, on view methods).

    Arguments:
        key: The flag.
        fallback: A view called with the same arguments when the flag is off (e.g. the old page);
            without it the answer is 404. An `async def` fallback needs an `async def` view; a sync
            fallback of an async view runs in a worker thread.
        default: The answer while no flag has that key (`request.flags.is_enabled`'s `default`, and
            `{% flag "key" default=True %}`'s): True keeps the view open until the flag exists.

    Raises:
        TypeError: An async fallback for a sync view, or a `default` that is not a bool.
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"flag_required needs a flag key (a non-empty str), got {key!r}")
    if not isinstance(default, bool):
        raise TypeError(f"flag_required: default must be True or False, got {default!r}")

    def decorator(view: _View) -> _View:
        if iscoroutinefunction(view):
            afallback: Callable[..., Any] | None = None
            if fallback is not None:
                afallback = fallback if iscoroutinefunction(fallback) else sync_to_async(fallback)

            @functools.wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                if (await aflags_for(request)).is_enabled(key, default):
                    return await view(request, *args, **kwargs)
                if afallback is None:
                    raise _not_found(key)
                return await afallback(request, *args, **kwargs)

            return cast("_View", async_view)

        if fallback is not None and iscoroutinefunction(fallback):
            raise TypeError(f"the fallback of sync view {view.__qualname__} must be sync too")

        @functools.wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if flags_for(request).is_enabled(key, default):
                return view(request, *args, **kwargs)
            if fallback is None:
                raise _not_found(key)
            return fallback(request, *args, **kwargs)

        return cast("_View", sync_view)

    return decorator


class FlagRequiredMixin(_MixinBase):
    """Serves a class-based view (sync or async) only when `flag_key` is on for the request.

        class NewCheckout(FlagRequiredMixin, TemplateView):
            flag_key = "new-checkout"

    Put it first among the bases. Override `flag_off()` to answer something other than 404 (it may
    be `async def` on an async view). `flag_default = True` lets the view through while no flag has
    that key (as `flag_required(default=True)` does).
    """

    flag_key: str = ""
    flag_default: bool = False

    def flag_off(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """The answer when the flag is off: 404 unless overridden."""
        raise _not_found(self.flag_key)

    def _flag_key(self) -> str:
        if not self.flag_key:
            raise ImproperlyConfigured(f"{type(self).__name__} needs a flag_key")
        return self.flag_key

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        key = self._flag_key()
        if getattr(type(self), "view_is_async", False):
            return self._adispatch(key, request, *args, **kwargs)
        if flags_for(request).is_enabled(key, self.flag_default):
            return super().dispatch(request, *args, **kwargs)
        return self.flag_off(request, *args, **kwargs)

    async def _adispatch(self, key: str, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: Any
        if (await aflags_for(request)).is_enabled(key, self.flag_default):
            response = super().dispatch(request, *args, **kwargs)
        else:
            response = self.flag_off(request, *args, **kwargs)
        if inspect.isawaitable(response):
            response = await response
        return cast("HttpResponseBase", response)
