"""Another process serving flags from the database source: what `test_django_db` measures propagation to.

    FERROFLAG_TEST_DB='{"ENGINE": ...}' FERROFLAG_TEST_INTERVAL=0.2 python tests/django_db_worker.py

Prints `ready <revision>` once its first load is done, then `version <evaluator version> <revision>
<time.monotonic()>` each time a new snapshot is published (CLOCK_MONOTONIC is one clock for every process
of the machine, so the parent can subtract its own readings). Exits when stdin closes, or after 120 s.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "ferroflag.django"],
    DATABASES={"default": json.loads(os.environ["FERROFLAG_TEST_DB"])},
    FERROFLAG={"DATABASE": "default", "INTERVAL": float(os.environ.get("FERROFLAG_TEST_INTERVAL", "1"))},
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

import ferroflag.django as ff_django  # noqa: E402
from ferroflag.django.database import DatabaseStatus  # noqa: E402

evaluator = ff_django.start()
status = ff_django.sync_status()
assert isinstance(status, DatabaseStatus), status
print(f"ready {status.revision}", flush=True)
seen = evaluator.version
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    # A 1 ms look at the version: the publish time is known to about that.
    readable, _, _ = select.select([sys.stdin], [], [], 0.001)
    if readable and not sys.stdin.readline():
        break
    version = evaluator.version
    if version != seen:
        now = time.monotonic()
        seen = version
        # The source records the revision just after it publishes: wait for that record of this version.
        for _ in range(1000):
            status = ff_django.sync_status()
            if status.snapshot_version >= version:  # type: ignore[union-attr]
                break
            time.sleep(0.001)
        print(f"version {version} {status.revision} {now:.6f}", flush=True)  # type: ignore[union-attr]
