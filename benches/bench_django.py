#!/usr/bin/env python3
"""The per-request cost of `ferroflag.django.middleware.FlagMiddleware`, against the same request without it.

    .venv/bin/python benches/bench_django.py           # full run, a few minutes
    .venv/bin/python benches/bench_django.py --quick   # smoke run (CI): checks the script works, numbers are rough

Each request goes through Django's real handler (`BaseHandler.get_response` / `get_response_async`, the code
WSGI and ASGI servers call) with SessionMiddleware and AuthenticationMiddleware in front, to a view that returns
a small `HttpResponse`; the server and the network are left out, so the difference is the middleware's alone.
"without" and "with" differ only by FlagMiddleware. Machines are noisy, so the two run in alternating rounds
and the medians of the rounds are reported.

Scenarios:
  anonymous         no session cookie: request.user is AnonymousUser, found without the database
  logged in         a signed-cookie session: request.user costs one query (in-memory SQLite)
  view reads user   the view resolves request.user itself (`await request.auser()` when async), as most views do
  + N flags         the view asks N distinct flags through request.flags (an async view calls
                    `await request.flags.aload()` first); the middleware builds request.flag_context, and so
                    resolves the user, only then: in a logged-in row without "view reads user", that user lookup
                    is part of what the flags cost

Exits 0 whatever the numbers: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import ClassVar

import django
from django.conf import settings

FLAGS = [{"key": f"flag-{i}", "enabled": True, "percentage": 50} for i in range(5)]
BASE_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
FLAG_MIDDLEWARE = "ferroflag.django.middleware.FlagMiddleware"


class urls:  # a stand-in urlconf module: Django reads its urlpatterns
    urlpatterns: ClassVar[list] = []


settings.configure(
    SECRET_KEY="bench-not-secret",
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "ferroflag.django",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "file:bench?mode=memory&cache=shared"}},
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    MIDDLEWARE=BASE_MIDDLEWARE,
    ROOT_URLCONF=urls,
    FERROFLAG={"FLAGS": FLAGS},
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    LOGGING_CONFIG=None,
)
django.setup()

import ferroflag  # noqa: E402
import ferroflag.django as ff_django  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.handlers.base import BaseHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402
from django.urls import path  # noqa: E402


def _view(reads_user: bool, flags: int, is_async: bool) -> Callable:
    keys = [f"flag-{i}" for i in range(flags)]

    def body(request):
        if reads_user:
            request.user.is_authenticated  # noqa: B018  (forces the lazy user, as most real views do)
        for key in keys:
            request.flags.is_enabled(key)
        return HttpResponse(b"ok")

    async def async_body(request):
        if reads_user:
            (await request.auser()).is_authenticated  # noqa: B018
        if keys:
            await request.flags.aload()  # the context (the user) is loaded off the event loop
        for key in keys:
            request.flags.is_enabled(key)
        return HttpResponse(b"ok")

    return async_body if is_async else body


def _handler(with_flags: bool, is_async: bool) -> BaseHandler:
    middleware = [*BASE_MIDDLEWARE, FLAG_MIDDLEWARE] if with_flags else BASE_MIDDLEWARE
    with override_settings(MIDDLEWARE=middleware):
        handler = BaseHandler()
        handler.load_middleware(is_async=is_async)
    return handler


def _time(handler: BaseHandler, factory: RequestFactory, route: str, n: int, is_async: bool) -> float:
    """Nanoseconds per request, for n requests (built beforehand, so only the handling is timed)."""
    requests = [factory.get(route) for _ in range(n)]
    gc.collect()
    gc.disable()
    try:
        if is_async:

            async def run() -> int:
                start = time.perf_counter_ns()
                for request in requests:
                    response = await handler.get_response_async(request)
                    assert response.status_code == 200, response
                return time.perf_counter_ns() - start

            elapsed = asyncio.run(run())
        else:
            start = time.perf_counter_ns()
            for request in requests:
                response = handler.get_response(request)
                assert response.status_code == 200, response
            elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, few requests")
    args = parser.parse_args()
    rounds, n = (2, 150) if args.quick else (16, 1500)

    call_command("migrate", run_syncdb=True, verbosity=0)
    user = get_user_model().objects.create_user("bench", email="bench@example.com", password="x")
    client = Client()
    client.force_login(user)
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    ff_django.start()  # the first request's one-off start-up is not what is measured

    scenarios = []  # (label, route, logged_in, is_async, flags)
    for is_async in (False, True):
        mode = "async" if is_async else "sync"
        for label, reads_user, flags, logged_in in (
            ("anonymous", False, 0, False),
            ("anonymous, view reads user", True, 0, False),
            ("logged in", False, 0, True),
            ("logged in, view reads user", True, 0, True),
            ("anonymous + 1 flag", False, 1, False),
            ("anonymous + 5 flags", False, 5, False),
            ("logged in + 1 flag", False, 1, True),
            ("logged in, view reads user + 1 flag", True, 1, True),
        ):
            route = f"{mode}/{len(scenarios)}/"
            urls.urlpatterns.append(path(route, _view(reads_user, flags, is_async)))
            scenarios.append((f"{mode:5}  {label}", "/" + route, logged_in, is_async, reads_user, flags))

    factories = {False: RequestFactory(), True: RequestFactory()}
    factories[True].cookies[settings.SESSION_COOKIE_NAME] = session_cookie
    handlers = {(w, a): _handler(w, a) for w in (False, True) for a in (False, True)}

    print(f"ferroflag {ferroflag.__version__}, Django {django.get_version()}, Python {platform.python_version()}")
    print(f"{rounds} rounds of {n} requests per configuration (a third of that when logged in); microseconds per")
    print("request, medians of the rounds; 'middleware' is the median of the per-round differences (with - without).\n")
    print(f"{'scenario':44} {'without':>9} {'with':>9} {'middleware':>11}")
    no_flags_route = {}  # (is_async, reads_user): the route whose view asks no flag
    for label, route, logged_in, is_async, reads_user, flags in scenarios:
        if flags == 0:
            no_flags_route.setdefault((is_async, reads_user), route)
        count = n // 3 if logged_in else n
        # A view that asks flags cannot run without the middleware: its baseline is the same request to the
        # view that asks none (reading the user or not, as it does), so the difference is the middleware plus
        # the asking.
        baseline_route = route if flags == 0 else no_flags_route[(is_async, reads_user)]
        without: list[float] = []
        with_: list[float] = []
        for i in range(rounds):
            factory = factories[logged_in]
            pair = [(without, False, baseline_route), (with_, True, route)]
            for times, with_flags, timed_route in pair if i % 2 else reversed(pair):  # alternate which goes first
                times.append(_time(handlers[(with_flags, is_async)], factory, timed_route, count, is_async))
        delta = statistics.median(b - a for a, b in zip(without, with_, strict=True)) / 1000
        wo, w = statistics.median(without) / 1000, statistics.median(with_) / 1000
        print(f"{label:44} {wo:9.2f} {w:9.2f} {delta:+10.2f}")
    print("\n'middleware': the per-request cost of FlagMiddleware (in the '+ N flags' rows, plus asking N flags")
    print("through request.flags), measured in the same run with the same handler otherwise.")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
