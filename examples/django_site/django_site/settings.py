"""Settings of the ferroflag Django example.

Flags come from `examples/flags.json`, watched for changes (`FERROFLAG_FILE` names another file).
With `FERROFLAG_URL` set they come from a flag service instead, e.g. `ferroflag serve examples/flags.json`
on http://127.0.0.1:8080. With `FERROFLAG_DATABASE=1` they come from the database, edited in the admin
at /admin/ (`manage.py migrate`, `manage.py ferroflag_flags import ../flags.json`, `manage.py
createsuperuser`). `manage.py test` and pytest use the same flags inline, so nothing is synced in tests.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
FLAG_FILE = Path(os.environ.get("FERROFLAG_FILE", BASE_DIR.parent / "flags.json"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",  # flags, segments and their history, for the database source
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "ferroflag.django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ferroflag.django.middleware.FlagMiddleware",  # after AuthenticationMiddleware: it reads request.user
]
ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"
ASGI_APPLICATION = "django_site.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",  # {% flag %} reads request.flags
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"  # anonymous visits need no database
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

TESTING = "test" in sys.argv[1:2] or "pytest" in sys.modules
FERROFLAG: dict[str, Any]
if TESTING:
    # Tests own their flags (override_flag): load them inline, never from a source that could replace them.
    FERROFLAG = {"FLAGS": json.loads(FLAG_FILE.read_text())["flags"]}
elif os.environ.get("FERROFLAG_URL"):
    FERROFLAG = {
        "URL": os.environ["FERROFLAG_URL"],
        "INTERVAL": 10.0,
        "TIMEOUT": 5.0,
        "CACHE_PATH": BASE_DIR / "flags-cache.json",
    }
    if os.environ.get("FERROFLAG_TOKEN"):
        FERROFLAG["HEADERS"] = {"Authorization": f"Bearer {os.environ['FERROFLAG_TOKEN']}"}
elif os.environ.get("FERROFLAG_DATABASE"):
    FERROFLAG = {"DATABASE": "default", "INTERVAL": 1.0}  # a change in the admin reaches every worker within 1 s
else:
    FERROFLAG = {"FILE": FLAG_FILE, "INTERVAL": 1.0}
FERROFLAG["CONTEXT"] = "django_site.flags.context"
