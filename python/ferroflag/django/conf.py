"""The `FERROFLAG` setting: its keys, their defaults, and the checks behind `ferroflag.E0xx`.

One function, `validate()`, decides what is wrong with a `FERROFLAG` value; the system checks report
its messages and `load()` raises `ImproperlyConfigured` with them, so a misconfiguration reads the
same in `manage.py check` and at the first request.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from ferroflag import ConfigError, EvalContext, FlagConfig, FlagEvaluator

__all__ = [
    "DEFAULT_CONTEXT",
    "KEYS",
    "SETTING",
    "ContextBuilder",
    "FerroflagSettings",
    "context_builder",
    "load",
    "validate",
]

SETTING = "FERROFLAG"
DEFAULT_CONTEXT = "ferroflag.django.middleware.user_context"
DEFAULT_ANONYMOUS_COOKIE = "ferroflag_anon"
DEFAULT_ANONYMOUS_COOKIE_AGE = 365 * 24 * 3600.0
# A cookie name is an RFC 6265 token: visible ASCII without separators.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

ContextBuilder: TypeAlias = Callable[
    [HttpRequest, Any], "EvalContext | Mapping[str, Any] | Awaitable[EvalContext | Mapping[str, Any]]"
]
"""`CONTEXT`: called as `builder(request, user)` with the resolved user (or None without
`AuthenticationMiddleware`); returns an `EvalContext` or a dict of its fields. May be `async def`."""

KEYS: dict[str, str] = {
    "URL": "base URL of a flag service (polled by FlagSyncClient)",
    "PATH": "path appended to URL (default '/api/flags'; '' polls URL as is)",
    "FILE": "local flag file (watched by FlagFileWatcher)",
    "FLAGS": "inline flags (a list of flag dicts, or {'flags': [...]}); nothing is synced",
    "DATABASE": "database alias of the ferroflag tables (edited in the Django admin), polled every INTERVAL",
    "INTERVAL": "seconds between polls or file checks",
    "TIMEOUT": "seconds allowed for one request to URL",
    "HEADERS": "HTTP headers sent to URL, e.g. {'Authorization': 'Bearer ...'}",
    "CACHE_PATH": "file keeping the last good document from URL",
    "START_WAIT": "seconds the first use in a process waits for the first snapshot",
    "CONTEXT": "dotted path of the context builder, called as builder(request, user)",
    "ANONYMOUS_COOKIE": "cookie keeping an anonymous visitor's id for rollouts (None: no cookie, anonymous id '')",
    "ANONYMOUS_COOKIE_AGE": "seconds the anonymous-id cookie lasts",
    "LOG_MISSING": "log a warning (logger ferroflag.django) the first time a flag no source defines is asked",
    "REQUIRE_FLAGS": "serve nothing (503) until the source's first load is in; the first request waits START_WAIT",
}

_SOURCES = ("URL", "FILE", "FLAGS", "DATABASE")
_SOURCE_NAMES: dict[str, Literal["url", "file", "flags", "database"]] = {
    "URL": "url",
    "FILE": "file",
    "FLAGS": "flags",
    "DATABASE": "database",
}
_URL_ONLY = ("PATH", "TIMEOUT", "HEADERS", "CACHE_PATH")
_SYNCED_ONLY = ("INTERVAL", "START_WAIT")
_OBJ = f"settings.{SETTING}"


@dataclass(frozen=True)
class FerroflagSettings:
    """A validated `FERROFLAG` value, with the defaults filled in."""

    source: Literal["url", "file", "flags", "database"]
    url: str = ""
    database: str = ""
    path: str = "/api/flags"
    file: str = ""
    flags: tuple[FlagConfig, ...] = ()
    interval: float | None = None  # None: the source's default (10 s for URL, 1 s for FILE and DATABASE)
    timeout: float = 5.0
    headers: Mapping[str, str] | None = None
    cache_path: str | None = None
    start_wait: float = 2.0
    context: str = DEFAULT_CONTEXT
    anonymous_cookie: str | None = DEFAULT_ANONYMOUS_COOKIE
    anonymous_cookie_age: float = DEFAULT_ANONYMOUS_COOKIE_AGE
    log_missing: bool = False
    require_flags: bool = False


def _error(code: int, msg: str, hint: str | None = None) -> checks.CheckMessage:
    return checks.Error(msg, hint=hint, obj=_OBJ, id=f"ferroflag.E{code:03d}")


def _warning(code: int, msg: str, hint: str | None = None) -> checks.CheckMessage:
    return checks.Warning(msg, hint=hint, obj=_OBJ, id=f"ferroflag.W{code:03d}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _path_text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, os.PathLike):
        text = os.fspath(value)
        return text if isinstance(text, str) and text else None
    return None


def _flags(value: object) -> tuple[FlagConfig, ...]:
    """Builds FLAGS through the real engine; raises ConfigError or TypeError as it does."""
    if isinstance(value, Mapping):
        value = value.get("flags")
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of flags or {{'flags': [...]}}, got {type(value).__name__}")
    return tuple(FlagEvaluator(value).configs())


def validate(raw: object) -> tuple[FerroflagSettings | None, list[checks.CheckMessage]]:
    """Checks a `FERROFLAG` value (`None` when the setting is missing).

    Returns:
        The settings (None when there is any error) and every problem found, errors and warnings.
    """
    if raw is None:
        hint = "Add FERROFLAG = {'FILE': BASE_DIR / 'flags.json'} (or 'URL': ..., or 'FLAGS': [] for no flags)."
        return None, [_error(1, f"The {SETTING} setting is missing.", hint)]
    if not isinstance(raw, Mapping):
        return None, [_error(1, f"{SETTING} must be a dict, got {type(raw).__name__}.")]

    problems: list[checks.CheckMessage] = []
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), list(KEYS), n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(KEYS)}."
            problems.append(_error(2, f"{SETTING} has an unknown key {key!r}.", hint))

    given = [key for key in _SOURCES if raw.get(key) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        problems.append(
            _error(
                3,
                f"{SETTING} needs exactly one source of flags: URL, FILE, FLAGS or DATABASE (got {what}).",
                "Use FLAGS: [] for a site (or a test run) without flags.",
            )
        )
    source = given[0] if len(given) == 1 else None

    url = raw.get("URL")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = repr(safe_url(url)) if isinstance(url, str) else type(url).__name__
            problems.append(_error(4, f"{SETTING}['URL'] must be an http(s) URL with a host, got {shown}."))
        else:
            flag_path = raw.get("PATH", "/api/flags")
            if (
                isinstance(flag_path, str)
                and flag_path.strip("/")
                and parts.path.rstrip("/").endswith("/" + flag_path.strip("/"))
            ):
                problems.append(
                    _warning(
                        4,
                        f"{SETTING}['URL'] already ends in the flag path {flag_path!r}: the client would ask "
                        f"{safe_url(url).rstrip('/')}{flag_path}.",
                        f"Give the service's base URL, or set PATH: '' to poll {safe_url(url)!r} as it is.",
                    )
                )

    file = raw.get("FILE")
    if file is not None:
        text = _path_text(file)
        if text is None:
            problems.append(
                _error(5, f"{SETTING}['FILE'] must be a path (str or PathLike), got {type(file).__name__}.")
            )
        elif Path(text).is_dir():
            problems.append(_error(5, f"{SETTING}['FILE'] is a directory: {text}."))
        elif not Path(text).exists():
            problems.append(
                _warning(1, f"{SETTING}['FILE'] does not exist: {text}.", "It is retried until it appears.")
            )

    database = raw.get("DATABASE")
    if database is not None:
        aliases = list(getattr(settings, "DATABASES", None) or {})
        if not isinstance(database, str) or database not in aliases:
            problems.append(
                _error(
                    13,
                    f"{SETTING}['DATABASE'] must name a database in DATABASES, got {database!r}.",
                    f"Known aliases: {', '.join(map(repr, aliases)) or 'none'}.",
                )
            )

    cookie = raw.get("ANONYMOUS_COOKIE", DEFAULT_ANONYMOUS_COOKIE)
    if cookie is not None and not (isinstance(cookie, str) and _COOKIE_NAME.fullmatch(cookie)):
        problems.append(
            _error(
                14,
                f"{SETTING}['ANONYMOUS_COOKIE'] must be a cookie name or None, got {cookie!r}.",
                "None turns the cookie off: every anonymous visitor then has the user id ''.",
            )
        )
    for key in ("LOG_MISSING", "REQUIRE_FLAGS"):
        flag = raw.get(key)
        if flag is not None and not isinstance(flag, bool):
            problems.append(_error(6, f"{SETTING}[{key!r}] must be True or False, got {flag!r}."))
    for key, zero_ok in (
        ("INTERVAL", False),
        ("TIMEOUT", False),
        ("START_WAIT", True),
        ("ANONYMOUS_COOKIE_AGE", False),
    ):
        value = raw.get(key)
        if value is None:
            continue
        if not (_is_number(value) and math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
            need = "a number >= 0" if zero_ok else "a number > 0"
            problems.append(_error(6, f"{SETTING}[{key!r}] must be {need} of seconds, got {value!r}."))

    headers = raw.get("HEADERS")
    if headers is not None and not (
        isinstance(headers, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        problems.append(_error(7, f"{SETTING}['HEADERS'] must be a dict of str to str."))

    path = raw.get("PATH")
    if path is not None and not isinstance(path, str):
        problems.append(_error(8, f"{SETTING}['PATH'] must be a str, got {type(path).__name__}."))
    cache_path = raw.get("CACHE_PATH")
    if cache_path is not None:
        text = _path_text(cache_path)
        if text is None:
            problems.append(_error(8, f"{SETTING}['CACHE_PATH'] must be a path, got {type(cache_path).__name__}."))
        elif not Path(text).resolve().parent.is_dir():
            problems.append(
                _warning(3, f"The directory of {SETTING}['CACHE_PATH'] does not exist: {text}.", "Nothing is cached.")
            )

    if source is not None:
        unused = [key for key in _URL_ONLY if raw.get(key) is not None and source != "URL"]
        unused += [key for key in _SYNCED_ONLY if raw.get(key) is not None and source == "FLAGS"]
        unused += ["REQUIRE_FLAGS"] if raw.get("REQUIRE_FLAGS") is not None and source == "FLAGS" else []
        for key in unused:
            applies = "URL" if key in _URL_ONLY else "URL, FILE and DATABASE"
            problems.append(
                _error(
                    9,
                    f"{SETTING}[{key!r}] does not apply to the {source} source.",
                    f"Remove {key}: it is for {applies} only ({KEYS[key]}).",
                )
            )

    context = raw.get("CONTEXT", DEFAULT_CONTEXT)
    if not isinstance(context, str):
        problems.append(_error(10, f"{SETTING}['CONTEXT'] must be a dotted path (str), got {type(context).__name__}."))
    else:
        try:
            builder = import_string(context)
        except ImportError as exc:
            problems.append(_error(10, f"{SETTING}['CONTEXT'] cannot be imported: {exc}."))
        else:
            if not callable(builder):
                problems.append(_error(10, f"{SETTING}['CONTEXT'] ({context}) is not callable."))

    flags: tuple[FlagConfig, ...] = ()
    if raw.get("FLAGS") is not None:
        try:
            flags = _flags(raw["FLAGS"])
        except (ConfigError, TypeError) as exc:
            problems.append(_error(11, f"{SETTING}['FLAGS'] is not a valid flag list: {exc}"))

    if source is None or any(isinstance(p, checks.Error) for p in problems):
        return None, problems
    interval = raw.get("INTERVAL")
    return FerroflagSettings(
        source=_SOURCE_NAMES[source],
        url=url if isinstance(url, str) else "",
        database=database if isinstance(database, str) else "",
        path=raw.get("PATH", "/api/flags"),
        file=(_path_text(file) or "") if file is not None else "",
        flags=flags,
        interval=float(interval) if interval is not None else None,
        timeout=float(raw.get("TIMEOUT", 5.0)),
        headers=dict(headers) if headers is not None else None,
        cache_path=_path_text(cache_path) if cache_path is not None else None,
        start_wait=float(raw.get("START_WAIT", 2.0)),
        context=str(context),
        anonymous_cookie=cookie,
        anonymous_cookie_age=float(raw.get("ANONYMOUS_COOKIE_AGE", DEFAULT_ANONYMOUS_COOKIE_AGE)),
        log_missing=raw.get("LOG_MISSING") is True,
        require_flags=raw.get("REQUIRE_FLAGS") is True,
    ), problems


def safe_url(url: str) -> str:
    """`url` as it may be shown in a message: without a password, a query or a fragment (which may hold a
    token); `user:***@` and `?…` say that something was left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a URL that does not parse>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"{user}@{host}"
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return shown + ("?…" if parts.query or parts.fragment else "")


def check_file_document(raw: object) -> list[checks.CheckMessage]:
    """E015: a `FILE` that exists but is not a document the engine accepts (the site would serve no flags).
    Only for `manage.py check`: at run time the watcher keeps the last good flags while the file is being fixed."""
    if not isinstance(raw, Mapping) or raw.get("FILE") is None:
        return []
    text = _path_text(raw["FILE"])
    if text is None or not Path(text).is_file():
        return []
    try:
        FlagEvaluator().load_file(text)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        return [_error(15, f"{SETTING}['FILE'] is not a valid flag document: {exc}", "ferroflag validate FILE")]
    return []


def load() -> FerroflagSettings:
    """Reads and validates `settings.FERROFLAG`.

    Raises:
        ImproperlyConfigured: The setting has errors (the same ones `manage.py check` reports).
    """
    config, problems = validate(getattr(settings, SETTING, None))
    if config is None:
        errors = "; ".join(f"{p.id}: {p.msg}" for p in problems if isinstance(p, checks.Error))
        raise ImproperlyConfigured(f"ferroflag: {errors}")
    return config


def context_builder(config: FerroflagSettings) -> ContextBuilder:
    """The `CONTEXT` callable."""
    builder: ContextBuilder = import_string(config.context)
    return builder
