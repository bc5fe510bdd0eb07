"""The Django integration (`ferroflag.django`): settings, middleware, views, templates, test helpers.

Django is configured here from tests/django_settings.py, without pytest-django. Flags come from
`FERROFLAG["FLAGS"]` unless a test points `URL` or `FILE` somewhere with `override_settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import unittest
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

django = pytest.importorskip("django")
httpx = pytest.importorskip("httpx")

import django_settings  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=sys.modules[__name__],
        **{name: getattr(django_settings, name) for name in dir(django_settings) if name.isupper()},
    )
django.setup()

import ferroflag.django as ff_django  # noqa: E402
from asgiref.sync import async_to_sync, iscoroutinefunction  # noqa: E402
from django.apps import apps  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import SystemCheckError  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.template import Context, Template, TemplateSyntaxError  # noqa: E402
from django.test import AsyncClient, Client, RequestFactory, SimpleTestCase, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.functional import LazyObject, SimpleLazyObject  # noqa: E402
from django.views import View  # noqa: E402
from ferroflag import EvalContext, EvalResult, FlagEvaluator  # noqa: E402
from ferroflag.django import middleware as ff_middleware  # noqa: E402
from ferroflag.django.decorators import FlagRequiredMixin, flag_required  # noqa: E402
from ferroflag.django.middleware import FlagMiddleware, RequestFlags, user_context  # noqa: E402
from ferroflag.django.testutils import override_flag  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLAGS = django_settings.FERROFLAG["FLAGS"]
WAIT = 10.0  # seconds any eventually-true condition gets


# --- views and urls -----------------------------------------------------------------------------


def _describe(request) -> dict:
    ctx = request.flag_context
    return {
        "user_id": ctx.user_id,
        "email": ctx.email,
        "plan": ctx.plan,
        "on": request.flags.is_enabled("on-flag"),
        "off": "off-flag" in request.flags,
        "staff": request.flags.is_enabled("staff-only"),
        "theme": request.flags.variant("theme"),
        "missing": request.flags.is_enabled("no-such-flag", default=True),
    }


def context_view(request):
    return JsonResponse(_describe(request))


async def async_context_view(request):
    await request.flags.aload()  # async code loads the context (the user) first, off the event loop
    return JsonResponse(_describe(request))


async def async_unloaded_view(request):
    return JsonResponse(_describe(request))  # no aload(): the first use is on the event loop


async def async_auser_view(request):
    user = await request.auser()  # the user is resolved: request.flags needs no I/O, so no aload()
    return JsonResponse({**_describe(request), "username": user.get_username()})


def plain_view(request):
    return HttpResponse("plain")


async def async_plain_view(request):
    return HttpResponse("async plain")


def flag_context_view(request):
    return JsonResponse({"user_id": request.flag_context.user_id})


def cache_view(request):
    for _ in range(3):
        request.flags.is_enabled("on-flag")
        request.flags.variant("on-flag")
        assert "on-flag" in request.flags
        request.flags.evaluate("on-flag")
    request.flags.variant("theme")
    return render(request, "flag.html")


def old_page(request, **kwargs):
    return HttpResponse("old page")


async def async_old_page(request, **kwargs):
    return HttpResponse("async old page")


@flag_required("on-flag")
def gated_on(request):
    return HttpResponse("new page")


@flag_required("off-flag")
def gated_off(request):
    return HttpResponse("new page")


@flag_required("off-flag", fallback=old_page)
def gated_fallback(request, **kwargs):
    return HttpResponse("new page")


@flag_required("on-flag")
async def async_gated_on(request):
    return HttpResponse("async new page")


@flag_required("off-flag")
async def async_gated_off(request):
    return HttpResponse("async new page")


@flag_required("off-flag", fallback=async_old_page)
async def async_gated_async_fallback(request):
    return HttpResponse("async new page")


@flag_required("off-flag", fallback=old_page)
async def async_gated_sync_fallback(request):
    return HttpResponse("async new page")


class OnView(FlagRequiredMixin, View):
    flag_key = "on-flag"

    def get(self, request):
        return HttpResponse("cbv on")


class OffView(OnView):
    flag_key = "off-flag"


class OffRedirectView(OffView):
    def flag_off(self, request, *args, **kwargs):
        return HttpResponseRedirect("/old/")


class AsyncOnView(FlagRequiredMixin, View):
    flag_key = "on-flag"

    async def get(self, request):
        return HttpResponse("async cbv on")


class AsyncOffView(AsyncOnView):
    flag_key = "off-flag"


class AsyncOffRedirectView(AsyncOffView):
    async def flag_off(self, request, *args, **kwargs):
        return HttpResponseRedirect("/old/")


def template_view(request):
    return render(request, "flag.html")


urlpatterns = [
    path("context/", context_view),
    path("async/context/", async_context_view),
    path("async/unloaded/", async_unloaded_view),
    path("async/auser/", async_auser_view),
    path("plain/", plain_view),
    path("async/plain/", async_plain_view),
    path("flag-context/", flag_context_view),
    path("cache/", cache_view),
    path("old/", old_page),
    path("gated/on/", gated_on),
    path("gated/off/", gated_off),
    path("gated/fallback/<int:n>/", gated_fallback),
    path("async/gated/on/", async_gated_on),
    path("async/gated/off/", async_gated_off),
    path("async/gated/async-fallback/", async_gated_async_fallback),
    path("async/gated/sync-fallback/", async_gated_sync_fallback),
    path("cbv/on/", OnView.as_view()),
    path("cbv/off/", OffView.as_view()),
    path("cbv/off-redirect/", OffRedirectView.as_view()),
    path("async/cbv/on/", AsyncOnView.as_view()),
    path("async/cbv/off/", AsyncOffView.as_view()),
    path("async/cbv/off-redirect/", AsyncOffRedirectView.as_view()),
    path("template/", template_view),
]


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _database():
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture(autouse=True)
def _fresh_state():
    """Each test starts and ends without an evaluator or a running sync."""
    ff_django._reset()
    yield
    ff_django._reset()


@pytest.fixture
def staff_user():
    user, _ = get_user_model().objects.get_or_create(username="ann", defaults={"email": "ann@staff.test"})
    return user


@pytest.fixture
def plain_user():
    user, _ = get_user_model().objects.get_or_create(username="bob", defaults={"email": "bob@example.com"})
    return user


class CountingEvaluator:
    """Stands in for the evaluator `request.flags` looks up, counting evaluations."""

    def __init__(self, inner: FlagEvaluator) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def evaluate(self, key: str, ctx: EvalContext) -> EvalResult:
        self.calls.append(key)
        return self.inner.evaluate(key, ctx)


@pytest.fixture
def counting(monkeypatch):
    counter = CountingEvaluator(ff_django.get_evaluator())
    monkeypatch.setattr(ff_middleware, "get_evaluator", lambda: counter)
    return counter


def thread_count(name: str) -> int:
    """Native threads of this process named `name` (Rust names its threads; Python's `threading` cannot see them)."""
    count = 0
    for comm in Path("/proc/self/task").glob("*/comm"):
        with contextlib.suppress(OSError):  # the thread may have exited meanwhile
            count += comm.read_text().strip() == name
    return count


def wait_for(predicate, timeout=WAIT, step=0.02):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def write_flags(path: Path, flags: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flags": flags}))
    os.replace(tmp, path)


@pytest.fixture
def flag_service(tmp_path):
    from ferroflag.server import FlagService

    flag_file = tmp_path / "served.json"
    write_flags(flag_file, [{"key": "served-flag", "enabled": True}])
    service = FlagService(flag_file, port=0, poll_interval=0.05, shutdown_grace=1.0)
    service.start()
    try:
        yield SimpleNamespace(url=service.url, file=flag_file)
    finally:
        service.close()


ANON = EvalContext("")


# --- middleware ---------------------------------------------------------------------------------


def test_anonymous_visitor_gets_a_stable_id_from_a_cookie():
    client = Client()
    response = client.get("/context/")
    body = response.json()
    cookie = response.cookies["ferroflag_anon"]
    assert len(cookie.value) == 32
    assert (cookie["httponly"], cookie["samesite"], cookie["secure"]) == (True, "Lax", "")
    assert cookie["max-age"] == 365 * 24 * 3600
    assert "Cookie" in response["Vary"]
    assert body == {
        "user_id": cookie.value,
        "email": "",
        "plan": "",
        "on": True,
        "off": False,
        "staff": False,
        "theme": "dark",
        "missing": True,
    }
    again = client.get("/context/")
    assert again.json()["user_id"] == cookie.value  # the same browser: the same id
    assert "ferroflag_anon" not in again.cookies  # nothing new to send
    assert Client().get("/context/").json()["user_id"] != cookie.value  # another browser
    assert Client().get("/plain/").cookies == {}  # a page that asks no flag sets no cookie
    secure = Client().get("/context/", secure=True).cookies["ferroflag_anon"]
    assert secure["secure"] is True
    forged = Client(cookies={"ferroflag_anon": "<script>"}).get("/context/")
    assert forged.json()["user_id"] == forged.cookies["ferroflag_anon"].value != "<script>"


def test_the_anonymous_cookie_can_be_turned_off_or_renamed():
    with override_settings(FERROFLAG={"FLAGS": FLAGS, "ANONYMOUS_COOKIE": None}):
        response = Client().get("/context/")
        assert response.json()["user_id"] == ""
        assert response.cookies == {}
    with override_settings(FERROFLAG={"FLAGS": FLAGS, "ANONYMOUS_COOKIE": "ab", "ANONYMOUS_COOKIE_AGE": 60}):
        cookie = Client().get("/context/").cookies["ab"]
        assert cookie["max-age"] == 60


def _signed_in(user, **properties):
    """What the default builder gives for a user of tests/django_settings.py."""
    flags = {"is_authenticated": True, "is_staff": False, "is_superuser": False, **properties}
    return EvalContext(str(user.pk), email=user.email, properties=flags)


def test_logged_in_user_gives_id_and_email(staff_user, plain_user):
    client = Client()
    client.force_login(staff_user)
    body = client.get("/context/").json()
    assert (body["user_id"], body["email"], body["plan"]) == (str(staff_user.pk), "ann@staff.test", "")
    assert body["staff"] is True  # the email rule matched

    client.force_login(plain_user)
    body = client.get("/context/").json()
    assert (body["user_id"], body["staff"]) == (str(plain_user.pk), False)


def test_user_context_reads_plan_and_country_when_the_model_has_them():
    user = SimpleNamespace(is_authenticated=True, pk=7, email="c@d.e", plan="team", country="DE", is_staff=True)
    signed_in = {"is_authenticated": True, "is_staff": True, "is_superuser": False}
    assert user_context(HttpRequest(), user) == EvalContext(
        "7", email="c@d.e", plan="team", country="DE", properties=signed_in
    )
    bare = SimpleNamespace(is_authenticated=True, pk="u-1")
    assert user_context(HttpRequest(), bare) == EvalContext("u-1", properties={**signed_in, "is_staff": False})
    anonymous = user_context(HttpRequest(), SimpleNamespace(is_authenticated=False))
    assert anonymous.properties == {"is_authenticated": "false", "is_staff": "false", "is_superuser": "false"}
    assert len(anonymous.user_id) == 32  # a new visitor's id
    assert user_context(HttpRequest(), None).get("is_authenticated") == "false"


def plan_context(request, user):
    return {"user_id": "ctx-user", "plan": request.GET.get("plan", "")}


async def async_plan_context(request, user):
    return EvalContext("async-ctx", plan=request.GET.get("plan", ""))


def not_a_context(request, user):
    return 42


@pytest.mark.parametrize(("builder", "user_id"), [("plan_context", "ctx-user"), ("async_plan_context", "async-ctx")])
@pytest.mark.parametrize("url", ["/context/", "/async/context/"])
def test_context_builder_setting(builder, user_id, url):
    with override_settings(FERROFLAG={"FLAGS": FLAGS, "CONTEXT": f"{__name__}.{builder}"}):
        body = Client().get(url, {"plan": "team"}).json()
    assert (body["user_id"], body["plan"]) == (user_id, "team")


IN_BETA = {"attribute": "groups", "operator": "in", "values": ["beta"]}
IS_STAFF = {"attribute": "is_staff", "operator": "eq", "values": ["true"]}  # booleans read as "true"/"false"
GROUP_FLAGS = [
    *FLAGS,
    {"key": "beta-group", "enabled": True, "rules": [{"conditions": [IN_BETA]}]},
    {"key": "staff-flag", "enabled": True, "rules": [{"conditions": [IS_STAFF]}]},
]


@pytest.fixture
def beta_member(plain_user):
    from django.contrib.auth.models import Group

    beta, _ = Group.objects.get_or_create(name="beta")
    ops, _ = Group.objects.get_or_create(name="ops")
    plain_user.groups.set([beta, ops])
    yield plain_user
    plain_user.groups.clear()


def test_staff_superuser_and_groups_targeting(beta_member, staff_user):
    with override_settings(FERROFLAG={"FLAGS": GROUP_FLAGS}):
        client = Client()
        client.force_login(beta_member)
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/context/")
        flags = response.wsgi_request.flags
        assert sorted(flags.context.get("groups")) == ["beta", "ops"]
        assert flags.is_enabled("beta-group")
        assert not flags.is_enabled("staff-flag")
        queries = [q["sql"] for q in captured.captured_queries]
        assert len(queries) == 3  # the session, the user, and the groups: one query, because a flag reads them
        assert "auth_group" in queries[2]

        staff_user.is_staff = True
        staff_user.save()
        try:
            client.force_login(staff_user)
            flags = client.get("/context/").wsgi_request.flags
            assert flags.is_enabled("staff-flag")
            assert not flags.is_enabled("beta-group")  # no groups: reads as ""
            assert flags.context.get("is_superuser") == "false"
        finally:
            staff_user.is_staff = False
            staff_user.save()
        anonymous = Client().get("/context/").wsgi_request.flags
        assert not anonymous.is_enabled("staff-flag")
        assert anonymous.context.get("is_authenticated") == "false"


def test_no_groups_query_when_no_flag_reads_groups(beta_member):
    client = Client()
    client.force_login(beta_member)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/context/")
    assert len(captured.captured_queries) == 2  # the session and the user only
    assert response.wsgi_request.flags.context.get("groups") == ""


def test_refers_to_groups_scans_flags_segments_and_bucket_by():
    def refers(**document):
        evaluator = FlagEvaluator()
        evaluator.update_json(json.dumps({"flags": [], **document}))
        return ff_middleware.refers_to_groups(evaluator)

    in_groups = {"conditions": [{"attribute": "groups", "operator": "in", "values": ["x"]}]}
    assert refers(flags=[{"key": "f", "enabled": True, "rules": [in_groups]}])
    assert refers(segments=[{"key": "s", "rules": [in_groups]}])
    assert refers(flags=[{"key": "f", "enabled": True, "bucket_by": "groups"}])
    assert not refers(flags=FLAGS)
    evaluator = FlagEvaluator(FLAGS)
    assert not ff_middleware.refers_to_groups(evaluator)
    evaluator.update([*FLAGS, {"key": "g", "enabled": True, "rules": [in_groups]}])
    assert ff_middleware.refers_to_groups(evaluator)  # a new version is scanned again


def test_async_views_read_groups_off_the_loop(beta_member):
    async def view(request):
        await request.flags.aload()
        return JsonResponse(
            {"groups": request.flags.context.get("groups"), "on": request.flags.is_enabled("beta-group")}
        )

    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(lambda: get_user_model().objects.get(pk=beta_member.pk))
    with override_settings(FERROFLAG={"FLAGS": GROUP_FLAGS}):
        body = json.loads(async_to_sync(FlagMiddleware(view))(request).content)
        assert (sorted(body["groups"]), body["on"]) == (["beta", "ops"], True)
        with pytest.raises(SynchronousOnlyOperation, match="aload"):
            _first_use_on_the_loop(beta_member, FERROFLAG={"FLAGS": GROUP_FLAGS})  # the groups query on the loop


def test_context_builder_must_return_a_context():
    with override_settings(FERROFLAG={"FLAGS": FLAGS, "CONTEXT": f"{__name__}.not_a_context"}):
        assert Client().get("/plain/").content == b"plain"  # lazy: a view that asks no flag never calls it
        with pytest.raises(TypeError, match="returned int"):
            Client().get("/context/")


def test_each_flag_is_evaluated_once_per_request(counting):
    response = Client().get("/cache/")
    assert response.content == b"[on][off][][dark][is-dark]"
    # on-flag: 13 questions in the view and 1 in the template; theme: 1 in the view and 2 in the template.
    assert sorted(counting.calls) == ["off-flag", "on-flag", "staff-only", "theme"]
    Client().get("/cache/")
    assert len(counting.calls) == 8  # a new request asks again


def test_request_flags_is_lazy(counting):
    response = Client().get("/plain/")
    assert response.content == b"plain"
    assert counting.calls == []
    flags = response.wsgi_request.flags
    assert flags._evaluator is None  # not even looked up
    assert flags.evaluated() == {}
    assert not flags.loaded  # nor the context built
    assert repr(flags) == "<RequestFlags for (context not loaded), 0 evaluated>"


BUILT = []


def counting_context(request, user):
    BUILT.append(user)
    return user_context(request, user)


@pytest.fixture
def built():
    BUILT.clear()
    with override_settings(FERROFLAG={"FLAGS": FLAGS, "CONTEXT": f"{__name__}.counting_context"}):
        yield BUILT
    BUILT.clear()


def _queries(method, url, *, user=None, middleware=True):
    """The SQL a sync request runs, from the moment the request is sent (login included in neither)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    with (
        override_settings(MIDDLEWARE=django_settings.MIDDLEWARE if middleware else django_settings.MIDDLEWARE[:2]),
        CaptureQueriesContext(connection) as captured,
    ):
        response = getattr(client, method)(url)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries], response


def test_a_view_that_asks_no_flag_makes_no_extra_query(staff_user, built):
    without, _ = _queries("get", "/plain/", user=staff_user, middleware=False)
    with_, response = _queries("get", "/plain/", user=staff_user)
    assert without == with_ == []  # logged in (database sessions): neither the session nor the user is read
    assert built == []  # the CONTEXT builder was never called
    assert not response.wsgi_request.flags.loaded
    assert type(response.wsgi_request.flag_context).__mro__[1] is LazyObject  # (isinstance() would build it)
    assert repr(response.wsgi_request.flag_context) == "<flag_context: not loaded yet>"  # repr builds nothing
    assert not response.wsgi_request.flags.loaded


def test_the_user_is_looked_up_at_the_first_use_of_flags(staff_user, built):
    queries, response = _queries("get", "/context/", user=staff_user)
    body = response.json()
    assert (body["user_id"], body["email"], body["staff"]) == (str(staff_user.pk), "ann@staff.test", True)
    assert len(queries) == 2  # the session, then the user: once, for flag_context and all the flags
    assert [user.pk for user in built] == [staff_user.pk]  # one build, shared by flag_context and flags
    request = response.wsgi_request
    assert request.flag_context == request.flags.context == _signed_in(staff_user)
    assert type(request.flags.context) is EvalContext  # the real one, for the native evaluator


def test_flag_context_alone_builds_the_context_once(staff_user, built):
    _, response = _queries("get", "/flag-context/", user=staff_user)
    assert response.json() == {"user_id": str(staff_user.pk)}
    flags = response.wsgi_request.flags
    assert flags.loaded
    assert flags.evaluated() == {}
    assert flags.is_enabled("staff-only")
    assert len(built) == 1
    assert flags._request is None  # the request is let go once the context is built


def test_a_view_that_reads_the_user_shares_its_lookup(staff_user):
    client = Client()
    client.force_login(staff_user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/template/")  # the auth context processor and {% flag %} both want the user
    assert response.content == b"[on][off][staff][dark][is-dark]"
    assert len(captured.captured_queries) == 2


def test_request_flags_api():
    evaluator = FlagEvaluator(FLAGS)
    flags = RequestFlags(ANON, evaluator)
    assert flags.evaluate("theme") == EvalResult(True, "dark", "default")
    assert flags.is_enabled("on-flag") is True
    assert flags.is_enabled("off-flag", default=True) is False  # default is only for unknown flags
    assert flags.is_enabled("nope") is False
    assert flags.is_enabled("nope", default=True) is True
    assert flags.variant("off-flag") == ""
    assert "on-flag" in flags
    assert "off-flag" not in flags
    assert 3 not in flags
    assert set(flags.evaluated()) == {"theme", "on-flag", "off-flag", "nope"}
    assert repr(flags).endswith("4 evaluated>")


def test_middleware_is_sync_and_async_capable():
    assert FlagMiddleware.sync_capable is True
    assert FlagMiddleware.async_capable is True

    async def async_get_response(request):
        return HttpResponse("ok")

    assert iscoroutinefunction(FlagMiddleware(async_get_response))
    assert not iscoroutinefunction(FlagMiddleware(lambda request: HttpResponse("ok")))

    request = RequestFactory().get("/")
    response = async_to_sync(FlagMiddleware(async_get_response))(request)
    assert response.content == b"ok"
    assert request.flag_context.get("is_authenticated") == "false"  # no request.user: anonymous
    assert request.flags.is_enabled("on-flag")


def _async_queries(staff_user, url, *, middleware=True):
    """The SQL an async request (the async middleware chain) runs, with a logged-in user.

    Run under async_to_sync, so the ORM's thread-sensitive calls come back to this thread and its connection.
    """
    client = AsyncClient(raise_request_exception=True)
    client.force_login(staff_user)
    mw = django_settings.MIDDLEWARE if middleware else django_settings.MIDDLEWARE[:2]
    with override_settings(MIDDLEWARE=mw), CaptureQueriesContext(connection) as captured:
        response = async_to_sync(client.get)(url)
    return response, [query["sql"] for query in captured.captured_queries]


def test_an_async_view_that_asks_no_flag_makes_no_extra_query(staff_user, built):
    response, without = _async_queries(staff_user, "/async/plain/", middleware=False)
    assert response.content == b"async plain"
    response, with_ = _async_queries(staff_user, "/async/plain/")
    assert response.content == b"async plain"
    assert without == with_ == []
    assert built == []


def test_async_view_loads_the_flags_off_the_loop(staff_user, built):
    response, queries = _async_queries(staff_user, "/async/context/")
    body = response.json()
    assert (body["user_id"], body["email"], body["staff"]) == (str(staff_user.pk), "ann@staff.test", True)
    assert len(queries) == 2  # the session and the user, through request.auser()
    assert len(built) == 1


def test_async_view_that_resolved_the_user_needs_no_aload(staff_user, built):
    response, queries = _async_queries(staff_user, "/async/auser/")
    body = response.json()
    assert (body["user_id"], body["staff"], body["username"]) == (str(staff_user.pk), True, "ann")
    assert len(queries) == 2  # request.auser()'s lookup, reused


@pytest.mark.parametrize("logged_in", [True, False])
def test_async_view_without_aload_is_refused_for_every_user(staff_user, logged_in):
    async def scenario():
        client = AsyncClient()
        if logged_in:
            await client.aforce_login(staff_user)
        await client.get("/async/unloaded/")

    # Refused for anonymous visitors too (they would need no query), so a missing aload() fails in any test.
    with pytest.raises(SynchronousOnlyOperation, match=r"await request\.flags\.aload\(\)"):
        async_to_sync(scenario)()


def _first_use_on_the_loop(user=None, **settings_overrides):
    """What a synchronous first use of request.flags answers in an async view, without aload()."""

    async def view(request):
        return JsonResponse({"user_id": request.flag_context.user_id, "on": request.flags.is_enabled("on-flag")})

    request = RequestFactory().get("/")
    if user is not None:
        request.user = user
    with override_settings(**settings_overrides):
        return json.loads(async_to_sync(FlagMiddleware(view))(request).content)


def test_on_the_event_loop_a_first_use_builds_in_place_only_without_io(staff_user, monkeypatch):
    assert _first_use_on_the_loop()["on"] is True  # no AuthenticationMiddleware: no user
    assert _first_use_on_the_loop(staff_user)["user_id"] == str(staff_user.pk)  # a user already looked up
    looked_up = SimpleLazyObject(lambda: staff_user)
    looked_up.pk  # noqa: B018
    with pytest.raises(SynchronousOnlyOperation, match="aload"):  # Django cannot tell (publicly) that it was
        _first_use_on_the_loop(looked_up)

    with pytest.raises(SynchronousOnlyOperation, match="aload"):
        _first_use_on_the_loop(SimpleLazyObject(lambda: staff_user))  # the lookup would run on the loop
    async_builder = {"FERROFLAG": {"FLAGS": FLAGS, "CONTEXT": f"{__name__}.async_plan_context"}}
    with pytest.raises(SynchronousOnlyOperation, match="aload"):
        _first_use_on_the_loop(**async_builder)  # async_to_sync cannot run on the loop

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Django's own opt-out applies
    assert _first_use_on_the_loop(SimpleLazyObject(lambda: staff_user))["user_id"] == str(staff_user.pk)
    with pytest.raises(SynchronousOnlyOperation, match="aload"):
        _first_use_on_the_loop(**async_builder)


def test_aload_is_idempotent_and_flags_for_reuses_the_request_flags(staff_user):
    request = RequestFactory().get("/")
    request.user = staff_user
    flags = ff_middleware.flags_for(request)
    assert ff_middleware.flags_for(request) is flags
    assert asyncio.run(ff_middleware.aflags_for(request)) is flags
    context = flags.context
    assert asyncio.run(flags.aload()) is flags
    assert flags.context is context
    assert request.flag_context == _signed_in(staff_user)


def test_async_client_with_a_logged_in_user(staff_user):
    async def scenario():
        client = AsyncClient()
        await client.aforce_login(staff_user)
        return (await client.get("/async/context/")).json()

    body = asyncio.run(scenario())
    assert (body["user_id"], body["email"], body["staff"]) == (str(staff_user.pk), "ann@staff.test", True)


def test_pytest_plugin_fixture_owns_the_flags(ferroflag):
    ferroflag.set({"off-flag": True, "on-flag": False})
    body = Client().get("/context/").json()
    assert (body["on"], body["off"]) == (False, True)
    assert ff_django.get_evaluator() is ferroflag.evaluator
    assert ff_django._rt.started is False  # the test's flags: nothing to sync


# --- views --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status", "content"),
    [
        ("/gated/on/", 200, b"new page"),
        ("/gated/off/", 404, None),
        ("/gated/fallback/3/", 200, b"old page"),
        ("/async/gated/on/", 200, b"async new page"),
        ("/async/gated/off/", 404, None),
        ("/async/gated/async-fallback/", 200, b"async old page"),
        ("/async/gated/sync-fallback/", 200, b"old page"),
        ("/cbv/on/", 200, b"cbv on"),
        ("/cbv/off/", 404, None),
        ("/cbv/off-redirect/", 302, b""),
        ("/async/cbv/on/", 200, b"async cbv on"),
        ("/async/cbv/off/", 404, None),
        ("/async/cbv/off-redirect/", 302, b""),
    ],
)
@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_gated_views(client_class, url, status, content):
    client = client_class()
    response = client.get(url)
    if client_class is AsyncClient:
        response = asyncio.run(response)
    assert response.status_code == status
    if content is not None:
        assert response.content == content


@pytest.mark.parametrize("url", ["/gated/on/", "/async/gated/on/", "/cbv/on/", "/async/cbv/on/"])
def test_gated_views_follow_the_flag(url):
    assert Client().get(url).status_code == 200
    with override_flag("on-flag", active=False):
        assert Client().get(url).status_code == 404
    assert Client().get(url).status_code == 200


@pytest.mark.parametrize("url", ["/gated/on/", "/async/gated/off/", "/cbv/on/", "/async/cbv/off/", "/template/"])
def test_views_work_without_the_middleware(url):
    with override_settings(MIDDLEWARE=django_settings.MIDDLEWARE[:2]):
        response = Client().get(url)
    assert response.status_code == (404 if "off" in url else 200)


def test_flag_required_arguments():
    with pytest.raises(TypeError, match="non-empty str"):
        flag_required("")
    with pytest.raises(TypeError, match="must be sync too"):
        flag_required("x", fallback=async_old_page)(plain_view)
    assert iscoroutinefunction(async_gated_on)
    assert async_gated_on.__name__ == "async_gated_on"


def test_mixin_needs_a_flag_key():
    class Nameless(FlagRequiredMixin, View):
        def get(self, request):
            return HttpResponse()

    with pytest.raises(ImproperlyConfigured, match="needs a flag_key"):
        Nameless.as_view()(RequestFactory().get("/"))


# --- templates ----------------------------------------------------------------------------------


def test_template_tag_on_off_and_variant(staff_user):
    assert Client().get("/template/").content == b"[on][off][][dark][is-dark]"
    client = Client()
    client.force_login(staff_user)
    assert client.get("/template/").content == b"[on][off][staff][dark][is-dark]"


def test_template_tag_follows_overrides():
    with override_flag("on-flag", active=False), override_flag("theme", variant="light"):
        assert Client().get("/template/").content == b"[off][off][][light][]"


def test_template_tag_without_a_request_is_anonymous():
    template = Template('{% load ferroflag %}{% flag key %}yes{% endflag %}|{% flag "staff-only" %}s{% endflag %}')
    assert template.render(Context({"key": "on-flag"})) == "yes|"
    assert template.render(Context({"key": "off-flag"})) == "|"
    with pytest.raises(TemplateSyntaxError, match="needs a flag key"):
        template.render(Context({"key": None}))


def test_template_tags_for_values_and_defaults():
    template = Template(
        "{% load ferroflag %}"
        '{% flag_value "limits" as limits %}{{ limits.rows }}/{{ limits.zero }}|'
        '{% flag_value "no-such-flag" 7 %}|{% flag_value "no-such-flag" %}|'
        '{% flag "no-such-flag" default=True %}on{% else %}off{% endflag %}|'
        '{% flag "off-flag" default=True %}on{% else %}off{% endflag %}'
    )
    # A default answers for an unknown flag only; a disabled flag stays off.
    assert template.render(Context({})) == "500/0|7|None|on|off"
    with pytest.raises(TemplateSyntaxError, match="default must be True or False"):
        Template('{% load ferroflag %}{% flag "x" default="yes" %}y{% endflag %}').render(Context({}))


@pytest.mark.parametrize(
    "source",
    [
        "{% flag %}x{% endflag %}",
        '{% flag "a" "b" %}x{% endflag %}',
        '{% flag "a" %}',
        '{% flag "a" fallback=True %}x{% endflag %}',
    ],
)
def test_template_tag_syntax_errors(source):
    with pytest.raises(TemplateSyntaxError):
        Template("{% load ferroflag %}" + source)


# --- override_flag ------------------------------------------------------------------------------


def _on(key: str) -> bool:
    return ff_django.get_evaluator().is_enabled(key, ANON)


def test_override_flag_as_context_manager_restores():
    with override_flag("off-flag"):
        assert _on("off-flag")
        with override_flag("off-flag", active=False):
            assert not _on("off-flag")
        assert _on("off-flag")
        assert Client().get("/gated/off/").status_code == 200
    assert not _on("off-flag")
    assert ff_django.get_evaluator().configs() == FlagEvaluator(FLAGS).configs()


def test_override_flag_as_decorator_on_functions():
    @override_flag("off-flag", active=True)
    def sync_body():
        return Client().get("/context/").json()["off"]

    @override_flag("theme", variant="light")
    async def async_body():
        return (await AsyncClient().get("/async/context/")).json()["theme"]

    assert sync_body() is True
    assert asyncio.run(async_body()) == "light"
    assert not _on("off-flag")
    assert ff_django.get_evaluator().get_variant("theme", ANON) == "dark"


def test_override_flag_on_a_test_case_class():
    @override_flag("off-flag", active=True)
    class FlagTests(SimpleTestCase):
        def test_on(self):
            assert self.client.get("/gated/off/").status_code == 200

        def test_still_on(self):
            assert _on("off-flag")
            with override_flag("off-flag", active=False):
                assert self.client.get("/gated/off/").status_code == 404

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(FlagTests).run(result)
    assert (result.testsRun, result.errors, result.failures) == (2, [], [])
    assert not _on("off-flag")


# --- test isolation over every source ----------------------------------------------------------


def _site_answers(client=None):
    """What a visitor sees: on-flag and off-flag through request.flags, and file-flag."""
    client = client or Client()
    body = client.get("/context/").json()
    return body["on"], body["off"], _on("file-flag")


FILE_FLAGS = [
    {"key": "on-flag", "enabled": True},
    {"key": "off-flag", "enabled": False},
    {"key": "file-flag", "enabled": True},
]


@pytest.mark.parametrize("loaded_first", [False, True], ids=["before-first-load", "after-first-load"])
def test_override_flag_wins_over_a_file_source_and_restores_exactly(tmp_path, loaded_first):
    flag_file = tmp_path / "flags.json"
    write_flags(flag_file, FILE_FLAGS)
    with override_settings(FERROFLAG={"FILE": flag_file, "INTERVAL": 0.05}):
        if loaded_first:
            assert _site_answers() == (True, False, True)  # the first request loads the file
        with override_flag("off-flag"), override_flag("on-flag", active=False):
            # Before the first load, the first request starts the watcher here: its flags come in
            # under the overrides, and the flags the test did not set are the file's.
            assert _site_answers() == (False, True, True)
            write_flags(flag_file, [*FILE_FLAGS[:2], {"key": "file-flag", "enabled": False}])
            assert wait_for(lambda: not _on("file-flag"))  # the source's change shows...
            assert _site_answers() == (False, True, False)  # ...under the overrides, which still win
        assert _site_answers() == (True, False, False)  # exactly the source's flags again
        assert (
            ff_django.get_evaluator().document()
            == FlagEvaluator([*FILE_FLAGS[:2], {"key": "file-flag", "enabled": False}]).document()
        )


def test_override_flag_before_the_first_load_of_a_flag_service(flag_service):
    with (
        override_settings(FERROFLAG={"URL": flag_service.url, "INTERVAL": 0.05}),
        override_flag("served-flag", active=False),
    ):
        assert not ff_django.get_evaluator().is_enabled("served-flag", ANON)
        Client().get("/plain/")  # the first request starts the sync client and waits for its first load
        assert ff_django.sync_status().ready
        assert "served-flag" in ff_django._site_evaluator(start=False)
        assert not ff_django.get_evaluator().is_enabled("served-flag", ANON)  # the override still wins
    with override_settings(FERROFLAG={"URL": flag_service.url, "INTERVAL": 0.05}):
        assert ff_django.get_evaluator().is_enabled("served-flag", ANON)


class TestFixtureLayersOverTheSite:
    """The `ferroflag` fixture over `site_evaluator()`, as the plugin does under pytest-django."""

    @pytest.fixture(params=["flags", "file"])
    def site(self, request, tmp_path):
        if request.param == "flags":
            yield None
            return
        flag_file = tmp_path / "flags.json"
        write_flags(flag_file, FILE_FLAGS)
        with override_settings(FERROFLAG={"FILE": flag_file, "INTERVAL": 0.05}):
            yield flag_file

    @pytest.fixture
    def ferroflag_evaluator(self, site):
        from ferroflag.django.testutils import site_evaluator

        return site_evaluator()

    def test_the_flags_not_set_are_the_sites(self, site, ferroflag):
        ferroflag.set({"off-flag": True})
        assert _site_answers()[:2] == (True, True)  # on-flag from FERROFLAG["FLAGS"] or the file
        assert ff_django.get_evaluator().is_enabled("file-flag", ANON) is (site is not None)
        if site is not None:
            write_flags(site, [{"key": "on-flag", "enabled": False}])
            assert wait_for(lambda: not ff_django.get_evaluator().is_enabled("on-flag", ANON))
            assert _site_answers()[:2] == (False, True)  # the source's change, the test's flag still on

    @pytest.mark.flags({"on-flag": False})
    def test_markers_too(self, site, ferroflag):
        assert _site_answers()[:2] == (False, False)


def test_the_fixture_restores_the_site_exactly():
    from ferroflag.django.testutils import site_evaluator
    from ferroflag.testing import TestData

    site = site_evaluator()
    before = site.document()
    with TestData(site) as data, data.activate():
        data.set({"on-flag": False, "new": True})
        assert ff_django.get_evaluator().is_enabled("new", ANON)
    assert site.document() == before
    assert ff_django.get_evaluator() is site


def test_override_flag_is_thread_safe():
    errors = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=WAIT)
            for _ in range(25):
                with override_flag(f"thread-{n}"):
                    assert _on(f"thread-{n}")
                    with override_flag("on-flag", active=False):
                        pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    assert errors == []
    assert ff_django.get_evaluator().configs() == FlagEvaluator(FLAGS).configs()


# --- system checks ------------------------------------------------------------------------------


def _ids(**overrides):
    with override_settings(**overrides):
        return [message.id for message in checks.run_checks(tags=["ferroflag"])]


def test_valid_settings_pass(tmp_path):
    flag_file = tmp_path / "f.json"
    write_flags(flag_file, [])
    assert _ids() == []
    assert _ids(FERROFLAG={"FILE": flag_file, "INTERVAL": 0.5, "START_WAIT": 0}) == []
    url = {"URL": "https://flags.internal", "PATH": "", "TIMEOUT": 2, "HEADERS": {"Authorization": "Bearer x"}}
    assert (
        _ids(FERROFLAG={**url, "CACHE_PATH": str(tmp_path / "cache.json"), "CONTEXT": f"{__name__}.plan_context"}) == []
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not a dict", "ferroflag.E001"),
        ({"FLAGS": [], "INTERVALL": 1}, "ferroflag.E002"),
        ({}, "ferroflag.E003"),
        ({"URL": "https://a.b", "FLAGS": []}, "ferroflag.E003"),
        ({"URL": "ftp://a.b"}, "ferroflag.E004"),
        ({"URL": "http://"}, "ferroflag.E004"),
        ({"URL": 5}, "ferroflag.E004"),
        ({"FILE": 5}, "ferroflag.E005"),
        ({"FILE": "<tmp>"}, "ferroflag.E005"),
        ({"FILE": "<tmp>/missing.json"}, "ferroflag.W001"),
        ({"URL": "https://a.b", "INTERVAL": 0}, "ferroflag.E006"),
        ({"URL": "https://a.b", "TIMEOUT": "5"}, "ferroflag.E006"),
        ({"URL": "https://a.b", "START_WAIT": -1}, "ferroflag.E006"),
        ({"URL": "https://a.b", "INTERVAL": True}, "ferroflag.E006"),
        ({"URL": "https://a.b", "INTERVAL": float("nan")}, "ferroflag.E006"),
        ({"URL": "https://a.b", "HEADERS": {"X-Key": 1}}, "ferroflag.E007"),
        ({"URL": "https://a.b", "HEADERS": "X-Key: 1"}, "ferroflag.E007"),
        ({"URL": "https://a.b", "PATH": 5}, "ferroflag.E008"),
        ({"URL": "https://a.b", "CACHE_PATH": 5}, "ferroflag.E008"),
        ({"URL": "https://a.b", "CACHE_PATH": "<tmp>/no/such/dir/cache.json"}, "ferroflag.W003"),
        ({"FILE": "<tmp>/f.json", "HEADERS": {"a": "b"}}, "ferroflag.E009"),
        ({"FLAGS": [], "INTERVAL": 1}, "ferroflag.E009"),
        ({"FLAGS": [], "CONTEXT": "no_such_module.builder"}, "ferroflag.E010"),
        ({"FLAGS": [], "CONTEXT": "os.sep"}, "ferroflag.E010"),
        ({"FLAGS": [], "CONTEXT": 5}, "ferroflag.E010"),
        ({"FLAGS": [{"key": "x", "enabled": "yes"}]}, "ferroflag.E011"),
        ({"FLAGS": "on-flag"}, "ferroflag.E011"),
        ({"URL": "https://a.b/api/flags"}, "ferroflag.W004"),
        ({"URL": "https://a.b/flags.json", "PATH": "flags.json"}, "ferroflag.W004"),
        ({"FILE": "<tmp>/bad.json"}, "ferroflag.E015"),
        ({"FLAGS": [], "LOG_MISSING": "yes"}, "ferroflag.E006"),
        ({"FLAGS": [], "ANONYMOUS_COOKIE": "a b"}, "ferroflag.E014"),
        ({"FLAGS": [], "ANONYMOUS_COOKIE": 5}, "ferroflag.E014"),
        ({"FLAGS": [], "ANONYMOUS_COOKIE_AGE": 0}, "ferroflag.E006"),
    ],
)
def test_each_setting_error_has_its_id(tmp_path, raw, expected):
    write_flags(tmp_path / "f.json", [])
    (tmp_path / "bad.json").write_text('{"flags": [{"key": "x", "enabled": "yes"}]}')
    if isinstance(raw, dict):
        raw = {k: v.replace("<tmp>", str(tmp_path)) if isinstance(v, str) else v for k, v in raw.items()}
    assert _ids(FERROFLAG=raw) == [expected]
    if expected.startswith("ferroflag.E") and expected != "ferroflag.E015":  # E015: the watcher waits for a fix
        with override_settings(FERROFLAG=raw), pytest.raises(ImproperlyConfigured, match=expected):
            ff_django.get_evaluator()
        with override_settings(FERROFLAG=raw), pytest.raises(ImproperlyConfigured, match=expected):
            apps.get_app_config("ferroflag").ready()  # at start-up, not at the first request


def test_missing_setting_is_e001():
    with override_settings():
        del settings.FERROFLAG
        [message] = checks.run_checks(tags=["ferroflag"])
        assert message.id == "ferroflag.E001"
        assert "missing" in message.msg
        with pytest.raises(ImproperlyConfigured, match="E001"):
            Client().get("/plain/")


def test_what_only_the_native_client_rejects_is_improperly_configured():
    with (
        override_settings(FERROFLAG={"URL": "https://a.b", "HEADERS": {"X-Key": "two\nlines"}}),
        pytest.raises(ImproperlyConfigured, match="X-Key"),
    ):
        ff_django.get_evaluator()


def test_urls_in_messages_show_no_password_and_no_query():
    with override_settings(FERROFLAG={"URL": "ftp://ann:hunter2@flags.internal/x?token=s3cret"}):
        [message] = checks.run_checks(tags=["ferroflag"])
    assert message.id == "ferroflag.E004"
    assert "hunter2" not in message.msg
    assert "s3cret" not in message.msg
    assert "'ftp://ann:***@flags.internal/x?…'" in message.msg
    with override_settings(FERROFLAG={"URL": "https://ann:hunter2@flags.internal/api/flags?token=s3cret"}):
        [message] = checks.run_checks(tags=["ferroflag"])
    assert message.id == "ferroflag.W004"
    assert "hunter2" not in message.msg + message.hint
    assert "s3cret" not in message.msg + message.hint


def test_e009_hint_says_what_to_do():
    with override_settings(FERROFLAG={"FILE": "flags.json", "HEADERS": {"a": "b"}, "START_WAIT": 1}):
        [message] = [m for m in checks.run_checks(tags=["ferroflag"]) if m.id == "ferroflag.E009"]
    assert message.hint.startswith("Remove HEADERS: it is for URL only")
    with override_settings(FERROFLAG={"FLAGS": [], "INTERVAL": 1}):
        [message] = checks.run_checks(tags=["ferroflag"])
    assert message.hint.startswith("Remove INTERVAL: it is for URL, FILE and DATABASE only")


def test_missing_middleware_is_w005():
    assert _ids(MIDDLEWARE=django_settings.MIDDLEWARE[:2]) == ["ferroflag.W005"]


def test_a_flag_no_source_defines_is_logged_once(caplog):
    with (
        override_settings(FERROFLAG={"FLAGS": FLAGS, "LOG_MISSING": True}),
        caplog.at_level("WARNING", "ferroflag.django"),
    ):
        Client().get("/context/")  # asks no-such-flag
        Client().get("/context/")
    assert [r.getMessage() for r in caplog.records if r.name == "ferroflag.django"] == [
        "ferroflag: flag 'no-such-flag' is not defined by the flag source; it answers its default"
    ]
    caplog.clear()
    ff_middleware._missing_logged.clear()
    Client().get("/context/")  # LOG_MISSING off (the default): nothing
    assert [r for r in caplog.records if r.name == "ferroflag.django"] == []


def test_unknown_key_hint_names_the_closest_key():
    with override_settings(FERROFLAG={"FLAGS": [], "INTERVALL": 1}):
        [message] = checks.run_checks(tags=["ferroflag"])
    assert message.hint == "Did you mean 'INTERVAL'?"


def test_middleware_before_authentication_is_e012():
    order = [django_settings.MIDDLEWARE[0], django_settings.MIDDLEWARE[2], django_settings.MIDDLEWARE[1]]
    assert _ids(MIDDLEWARE=order) == ["ferroflag.E012"]


def test_template_engine_without_request_processor_is_w002():
    engine = {**django_settings.TEMPLATES[0], "OPTIONS": {"context_processors": []}}
    assert _ids(TEMPLATES=[engine]) == ["ferroflag.W002"]


def test_manage_py_check_fails_on_errors():
    with override_settings(FERROFLAG={}), pytest.raises(SystemCheckError, match=r"ferroflag\.E003"):
        call_command("check", verbosity=0)


# --- ASGI ---------------------------------------------------------------------------------------


def _asgi_app():
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def test_async_views_served_by_the_asgi_handler(staff_user):
    client = Client()
    client.force_login(staff_user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    async def scenario():
        transport = httpx.ASGITransport(app=_asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            anonymous = (await http.get("/async/context/")).json()
            gated = [(await http.get(url)).status_code for url in ("/async/gated/on/", "/async/gated/off/")]
            cbv = (await http.get("/async/cbv/on/")).text
            http.cookies.set(settings.SESSION_COOKIE_NAME, session)
            logged_in = (await http.get("/async/context/")).json()
            sync_view = (await http.get("/context/")).json()  # a sync view: built lazily in its worker thread
            return anonymous, gated, cbv, logged_in, sync_view

    anonymous, gated, cbv, logged_in, sync_view = asyncio.run(scenario())
    assert (len(anonymous["user_id"]), anonymous["on"], anonymous["theme"]) == (32, True, "dark")
    assert gated == [200, 404]
    assert cbv == "async cbv on"
    assert (logged_in["user_id"], logged_in["staff"]) == (str(staff_user.pk), True)
    assert (sync_view["user_id"], sync_view["staff"]) == (str(staff_user.pk), True)


def test_async_view_under_a_real_asgi_server():
    uvicorn = pytest.importorskip("uvicorn")
    config = uvicorn.Config(_asgi_app(), host="127.0.0.1", port=0, lifespan="off", log_config=None, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started), "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as http:
            body = http.get("/async/context/").json()
            statuses = [http.get(url).status_code for url in ("/async/gated/on/", "/async/gated/off/", "/context/")]
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
    assert not thread.is_alive()
    assert (len(body["user_id"]), body["on"], body["off"]) == (32, True, False)
    assert statuses == [200, 404, 200]


# --- start-up and sync --------------------------------------------------------------------------


def test_file_source(tmp_path):
    flag_file = tmp_path / "flags.json"
    write_flags(flag_file, [{"key": "file-flag", "enabled": True}])
    before = thread_count("ferroflag-file")
    with override_settings(FERROFLAG={"FILE": flag_file, "INTERVAL": 0.05}):
        body = Client().get("/context/").json()
        assert (body["on"], body["missing"]) == (False, True)  # the file's flags, not FLAGS
        assert _on("file-flag")
        assert thread_count("ferroflag-file") == before + 1
        write_flags(flag_file, [{"key": "file-flag", "enabled": False}])
        assert wait_for(lambda: not _on("file-flag"))
        status = ff_django.sync_status()
        assert status is not None
        assert status.source == "file"
    assert wait_for(lambda: thread_count("ferroflag-file") == before)


@pytest.fixture
def silent_service():
    """A flag service that accepts connections and never answers: the first load stays in flight."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def _timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_a_view_that_asks_no_flag_never_waits_for_the_first_load(silent_service):
    with override_settings(FERROFLAG={"URL": silent_service, "START_WAIT": 1.0, "TIMEOUT": 5}):
        response, took = _timed(lambda: Client().get("/plain/"))
        assert response.content == b"plain"
        assert took < 0.5  # the sync started, and the view did not wait for it
        assert ff_django._rt.started
        body, took = _timed(lambda: Client().get("/context/").json())
        assert 0.8 < took < 3.0  # the first flag use waits up to START_WAIT for the first load...
        assert body["missing"] is True  # ...then answers with defaults, nothing loaded
        _, took = _timed(lambda: Client().get("/context/"))
        assert took < 0.5  # ...once per process


def test_concurrent_first_flag_uses_wait_start_wait_once_in_all(silent_service):
    with override_settings(FERROFLAG={"URL": silent_service, "START_WAIT": 1.0, "TIMEOUT": 5}):
        Client().get("/plain/")  # starts the sync
        time.sleep(0.4)  # the load is in flight: the others should wait only what is left of START_WAIT
        barrier = threading.Barrier(4)
        took: list[float] = []

        def request():
            barrier.wait(timeout=WAIT)
            took.append(_timed(lambda: Client().get("/context/"))[1])

        threads = [threading.Thread(target=request) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=WAIT)
        assert len(took) == 4
        assert max(took) < 1.0  # the process's one deadline, START_WAIT after the start, not START_WAIT each
        assert min(took) > 0.3


def test_async_first_flag_use_waits_off_the_loop(silent_service):
    with override_settings(FERROFLAG={"URL": silent_service, "START_WAIT": 1.0, "TIMEOUT": 5}):

        async def scenario():
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            task = asyncio.ensure_future(ticker())
            try:
                response = await AsyncClient().get("/async/context/")
            finally:
                task.cancel()
            return response.status_code, ticks

        (status, ticks), took = _timed(lambda: asyncio.run(scenario()))
        assert status == 200
        assert took > 0.8  # it waited for the first load...
        assert ticks >= 10  # ...and the event loop kept running meanwhile


def test_require_flags_serves_nothing_until_the_first_load(silent_service, flag_service):
    with override_settings(FERROFLAG={"URL": silent_service, "START_WAIT": 0.5, "TIMEOUT": 5, "REQUIRE_FLAGS": True}):
        response, took = _timed(lambda: Client().get("/plain/"))
        assert response.status_code == 503  # not even a view that asks no flag: the site is not up yet
        assert response["Retry-After"] == "5"
        assert took > 0.4  # the first request waited START_WAIT for the load
        response, took = _timed(lambda: Client().get("/plain/"))
        assert (response.status_code, took < 0.3) == (503, True)  # the wait was once
    with override_settings(FERROFLAG={"URL": flag_service.url, "REQUIRE_FLAGS": True}):
        assert Client().get("/plain/").status_code == 200
        assert _on("served-flag")
    assert _ids(FERROFLAG={"FLAGS": [], "REQUIRE_FLAGS": True}) == ["ferroflag.E009"]
    assert _ids(FERROFLAG={"FILE": "flags.json", "REQUIRE_FLAGS": 1}) == ["ferroflag.W001", "ferroflag.E006"]


def test_ready_twice_and_many_first_uses_start_one_sync_thread(flag_service):
    before = thread_count("ferroflag-sync")
    with override_settings(FERROFLAG={"URL": flag_service.url, "INTERVAL": 0.2}):
        config = apps.get_app_config("ferroflag")
        config.ready()
        config.ready()
        assert thread_count("ferroflag-sync") == before  # ready() starts nothing
        assert ff_django.sync_status() is None

        barrier = threading.Barrier(8)
        evaluators = []

        def first_use():
            barrier.wait(timeout=WAIT)
            evaluators.append(ff_django.get_evaluator())

        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=WAIT)
        for _ in range(3):
            assert Client().get("/context/").status_code == 200
        ff_django.start()
        config.ready()
        ff_django.start()

        assert len({id(e) for e in evaluators}) == 1
        assert thread_count("ferroflag-sync") == before + 1
        assert _on("served-flag")  # the first use waited for the first snapshot
        status = ff_django.sync_status()
        assert status is not None
        assert (status.ready, status.running, status.source) == (True, True, "network")

        ff_django.stop()
        assert wait_for(lambda: thread_count("ferroflag-sync") == before)
        assert _on("served-flag")  # stopped: keeps answering
        ff_django.start()  # no wait this time (it has flags): the thread names itself a moment later
        assert wait_for(lambda: thread_count("ferroflag-sync") == before + 1)
        time.sleep(0.1)
        assert thread_count("ferroflag-sync") == before + 1
    assert wait_for(lambda: thread_count("ferroflag-sync") == before)  # the settings change stopped it


def test_async_first_request_starts_the_sync_off_the_loop(flag_service):
    before = thread_count("ferroflag-sync")
    with override_settings(FERROFLAG={"URL": flag_service.url, "INTERVAL": 0.2}):

        async def scenario():
            transport = httpx.ASGITransport(app=_asgi_app())
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                return [(await http.get("/async/context/")).status_code for _ in range(3)]

        assert asyncio.run(scenario()) == [200, 200, 200]
        assert thread_count("ferroflag-sync") == before + 1
        assert asyncio.run(ff_django.aget_evaluator()) is ff_django.get_evaluator()
        assert _on("served-flag")


def test_override_flag_starts_no_sync(flag_service):
    before = thread_count("ferroflag-sync")
    with override_settings(FERROFLAG={"URL": flag_service.url}), override_flag("off-flag"):
        assert _on_without_start("off-flag")
        assert thread_count("ferroflag-sync") == before


def _on_without_start(key):
    return ff_django.get_evaluator(start=False).is_enabled(key, ANON)


def _reap(pid: int) -> int:
    """The child's wait status; a child still running after WAIT seconds (a failed test) is killed."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return status
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_syncs_on_its_own(flag_service):
    with override_settings(FERROFLAG={"URL": flag_service.url, "INTERVAL": 0.1}):
        ff_django.start()  # as in a gunicorn --preload master that evaluates flags
        assert _on("served-flag")
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
            pid = os.fork()
        if pid == 0:  # the child: report, then leave without running pytest's exit handlers
            code = 1
            try:
                os.close(read_end)
                threads = wait_for(lambda: thread_count("ferroflag-sync") == 1) and thread_count("ferroflag-sync")
                inherited = _on("served-flag")
                os.write(write_end, b"forked\n")
                changed = wait_for(lambda: _on("new-flag"))
                report = {"threads": threads, "inherited": inherited, "changed": changed}
                os.write(write_end, json.dumps(report).encode() + b"\n")
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        try:
            with os.fdopen(read_end, "rb") as pipe:
                assert select.select([pipe], [], [], WAIT)[0], "the child did not answer"
                assert pipe.readline() == b"forked\n"
                changed = [{"key": "served-flag", "enabled": True}, {"key": "new-flag", "enabled": True}]
                write_flags(flag_service.file, changed)
                assert select.select([pipe], [], [], 2 * WAIT)[0], "the child did not answer"
                report = json.loads(pipe.readline())
        finally:
            status = _reap(pid)
        assert os.waitstatus_to_exitcode(status) == 0
        assert report == {"threads": 1, "inherited": True, "changed": True}
        assert wait_for(lambda: _on("new-flag"))  # the parent's own poller too


# --- the example project ------------------------------------------------------------------------


def _manage(*args: str) -> subprocess.CompletedProcess:
    site = ROOT / "examples" / "django_site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FERROFLAG_"))}
    return subprocess.run(
        [sys.executable, str(site / "manage.py"), *args],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_example_site_passes_its_checks():
    result = _manage("check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_example_site_tests_pass():
    result = _manage("test", "django_site", "-v", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 8 tests" in result.stderr
    assert "OK" in result.stderr


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.slow
def test_example_site_tests_pass_in_any_order(seed):
    result = _manage("test", "django_site", "--shuffle", str(seed))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 8 tests" in result.stderr


def _pytest_example(*args: str) -> subprocess.CompletedProcess:
    site = ROOT / "examples" / "django_site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FERROFLAG_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "django", *args],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_example_site_tests_pass_under_pytest_django_forwards_and_backwards():
    pytest.importorskip("pytest_django")
    collected = _pytest_example("--collect-only")
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert len(ids) == 14, collected.stdout + collected.stderr
    for order in (ids, ids[::-1]):
        result = _pytest_example(*order)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "14 passed" in result.stdout
