"""System checks (`manage.py check`, tag `ferroflag`).

| id | problem |
|---|---|
| ferroflag.E001 | `FERROFLAG` is missing or not a dict |
| ferroflag.E002 | an unknown key (with the closest known one as a hint) |
| ferroflag.E003 | not exactly one source: `URL`, `FILE`, `FLAGS` or `DATABASE` |
| ferroflag.E004 | `URL` is not an http(s) URL with a host |
| ferroflag.E005 | `FILE` is not a path, or is a directory |
| ferroflag.E006 | `INTERVAL`/`TIMEOUT`/`ANONYMOUS_COOKIE_AGE` not a number > 0, `START_WAIT` not a number >= 0 |
| ferroflag.E007 | `HEADERS` is not a dict of str to str |
| ferroflag.E008 | `PATH` is not a str, or `CACHE_PATH` not a path |
| ferroflag.E009 | an option that does not apply to the source (e.g. `HEADERS` with `FILE`) |
| ferroflag.E010 | `CONTEXT` cannot be imported or is not callable |
| ferroflag.E011 | `FLAGS` is rejected by the engine |
| ferroflag.E012 | `FlagMiddleware` comes before `AuthenticationMiddleware` (every user would look anonymous) |
| ferroflag.E013 | `DATABASE` does not name an alias of `DATABASES` |
| ferroflag.E014 | `ANONYMOUS_COOKIE` is not a cookie name or None |
| ferroflag.E015 | `FILE` is not a flag document the engine accepts |
| ferroflag.W001 | `FILE` does not exist (yet) |
| ferroflag.W002 | a Django template engine without the `request` context processor (`{% flag %}` cannot see the user) |
| ferroflag.W003 | the directory of `CACHE_PATH` does not exist |
| ferroflag.W004 | `URL` already ends in the flag path (`PATH` would be appended twice) |
| ferroflag.W005 | `FlagMiddleware` is not in `MIDDLEWARE` |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from ferroflag.django import conf

__all__ = ["check_middleware", "check_settings", "check_templates"]

_MIDDLEWARE = "ferroflag.django.middleware.FlagMiddleware"
_AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
_REQUEST_PROCESSOR = "django.template.context_processors.request"


@checks.register("ferroflag")
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 to E011, E013 to E015, W001, W003, W004: the `FERROFLAG` setting."""
    raw = getattr(settings, conf.SETTING, None)
    return conf.validate(raw)[1] + conf.check_file_document(raw)


@checks.register("ferroflag")
def check_middleware(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E012: the middleware must see `request.user`; W005: it is missing."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if _MIDDLEWARE not in middleware:
        return [
            checks.Warning(
                f"{_MIDDLEWARE} is not in MIDDLEWARE: request.flags exists only in views behind @flag_required or "
                "FlagRequiredMixin, {% flag %} answers as for an anonymous visitor elsewhere, and anonymous "
                "visitors get a new id on every request (no cookie is sent).",
                hint="Add it to MIDDLEWARE after AuthenticationMiddleware.",
                obj="settings.MIDDLEWARE",
                id="ferroflag.W005",
            )
        ]
    if (
        _MIDDLEWARE in middleware
        and _AUTH_MIDDLEWARE in middleware
        and middleware.index(_MIDDLEWARE) < middleware.index(_AUTH_MIDDLEWARE)
    ):
        return [
            checks.Error(
                f"{_MIDDLEWARE} comes before {_AUTH_MIDDLEWARE}: every request would be evaluated as anonymous.",
                hint="Move it after AuthenticationMiddleware in MIDDLEWARE.",
                obj="settings.MIDDLEWARE",
                id="ferroflag.E012",
            )
        ]
    return []


@checks.register("ferroflag", checks.Tags.templates)
def check_templates(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W002: `{% flag %}` needs the request in the template context to see the user."""
    problems: list[checks.CheckMessage] = []
    for engine in getattr(settings, "TEMPLATES", None) or []:
        if engine.get("BACKEND") != "django.template.backends.django.DjangoTemplates":
            continue
        processors = engine.get("OPTIONS", {}).get("context_processors", [])
        if _REQUEST_PROCESSOR not in processors:
            problems.append(
                checks.Warning(
                    f"Template engine {engine.get('NAME', 'django')!r} lacks {_REQUEST_PROCESSOR}: "
                    "{% flag %} and {% flag_variant %} evaluate for an anonymous user there.",
                    hint=f"Add {_REQUEST_PROCESSOR!r} to OPTIONS['context_processors'].",
                    obj="settings.TEMPLATES",
                    id="ferroflag.W002",
                )
            )
    return problems
