"""WSGI entry point: `gunicorn django_site.wsgi` (from examples/django_site/).

Each worker starts its own flag sync on its first request, also with `--preload`.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
application = get_wsgi_application()
