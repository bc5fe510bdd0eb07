"""A one-view Django site on the database source, for `benches/bench_django_db.py` (gunicorn imports it).

    FERROFLAG_BENCH_DB='{"ENGINE": ...}' gunicorn -w 2 django_db_site:application   # from benches/

`GET /` answers `<pid> <on|off> <revision>`: which worker served the request, the flag `bench`
for an anonymous visitor, and the revision that worker's flags were loaded at. `GET /flag` only asks the flag.
"""

from __future__ import annotations

import json
import os

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path


def view(request: HttpRequest) -> HttpResponse:
    import ferroflag.django as ff_django

    on = request.flags.is_enabled("bench")  # type: ignore[attr-defined]
    status = ff_django.sync_status()
    revision = getattr(status, "revision", -1)
    return HttpResponse(f"{os.getpid()} {'on' if on else 'off'} {revision}", content_type="text/plain")


def flag_only(request: HttpRequest) -> HttpResponse:
    """Asks the flag and nothing else: what bench_django_db's per-request rows time."""
    return HttpResponse("on" if request.flags.is_enabled("bench") else "off")  # type: ignore[attr-defined]


urlpatterns = [path("", view), path("flag", flag_only)]

settings.configure(
    SECRET_KEY="bench-not-secret",
    ALLOWED_HOSTS=["127.0.0.1", "testserver"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "ferroflag.django"],
    MIDDLEWARE=["ferroflag.django.middleware.FlagMiddleware"],
    DATABASES={"default": json.loads(os.environ["FERROFLAG_BENCH_DB"])},
    FERROFLAG={
        "DATABASE": "default",
        "INTERVAL": float(os.environ.get("FERROFLAG_BENCH_INTERVAL", "1.0")),
        "ANONYMOUS_COOKIE": None,
    },
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()
application = get_wsgi_application()
