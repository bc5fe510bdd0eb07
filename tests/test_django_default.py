"""`default=` where a Django view is gated on a flag: the answer while no flag has that key, as everywhere else
(`request.flags.is_enabled(key, default)`, `{% flag "key" default=True %}`, FastAPI's `require_flag`)."""

from __future__ import annotations

import inspect

import pytest

django = pytest.importorskip("django")

import django_settings  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:  # as tests/test_django.py does, with its URLs, whichever module runs first
    settings.configure(
        ROOT_URLCONF="test_django",
        **{name: getattr(django_settings, name) for name in dir(django_settings) if name.isupper()},
    )
django.setup()

import ferroflag.django as ff_django  # noqa: E402
from asgiref.sync import async_to_sync  # noqa: E402
from django.http import Http404, HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from django.views import View  # noqa: E402
from ferroflag.django.decorators import FlagRequiredMixin, flag_required  # noqa: E402

# A cold start: the flag the views are gated on does not exist yet.
NO_FLAGS = {"FLAGS": [{"key": "other", "enabled": True}]}
FLAG_OFF = {"FLAGS": [{"key": "kill-switch", "enabled": False}]}


@pytest.fixture(autouse=True)
def _fresh_state():
    ff_django._reset()
    yield
    ff_django._reset()


@flag_required("kill-switch", default=True)
def open_until_the_flag_exists(request):
    return HttpResponse("open")


@flag_required("kill-switch")
def closed_until_the_flag_exists(request):
    return HttpResponse("open")


@flag_required("kill-switch", default=True)
async def async_open_until_the_flag_exists(request):
    return HttpResponse("open")


class OpenView(FlagRequiredMixin, View):
    flag_key = "kill-switch"
    flag_default = True

    def get(self, request):
        return HttpResponse("open")


class AsyncOpenView(FlagRequiredMixin, View):
    flag_key = "kill-switch"
    flag_default = True

    async def get(self, request):
        return HttpResponse("open")


async def _awaited(awaitable):
    return await awaitable


def call(view):
    response = view(RequestFactory().get("/"))
    if inspect.isawaitable(response):  # an async view (or mixin dispatch)
        response = async_to_sync(_awaited)(response)
    return response


@pytest.mark.parametrize(
    "view",
    [open_until_the_flag_exists, async_open_until_the_flag_exists, OpenView.as_view(), AsyncOpenView.as_view()],
    ids=["function", "async-function", "mixin", "async-mixin"],
)
def test_default_true_lets_the_view_through_until_the_flag_exists(view):
    with override_settings(FERROFLAG=NO_FLAGS):
        assert call(view).content == b"open"
    ff_django._reset()
    with override_settings(FERROFLAG=FLAG_OFF), pytest.raises(Http404):  # the flag exists: it answers
        call(view)


def test_without_default_an_unknown_flag_is_off():
    with override_settings(FERROFLAG=NO_FLAGS), pytest.raises(Http404):
        call(closed_until_the_flag_exists)


def test_default_must_be_a_bool():
    with pytest.raises(TypeError, match="default must be True or False"):
        flag_required("kill-switch", default="yes")
