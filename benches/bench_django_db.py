#!/usr/bin/env python3
"""The Django database source: how long a change takes to reach other workers, and what it costs a request.

    .venv/bin/python benches/bench_django_db.py           # full run (about a minute)
    .venv/bin/python benches/bench_django_db.py --quick   # smoke run (CI)

Propagation: a real PostgreSQL server (a throwaway cluster, tests/pg_cluster.py; `apt-get install postgresql`)
and a real gunicorn with 2 sync workers serving a site on `FERROFLAG = {"DATABASE": ...}` (benches/django_db_site.py).
This process changes the flag through `ferroflag.django.store` (as the admin does), then asks the site every
2 ms until both workers (told apart by pid) answer with the new state; the time from the commit to each
worker's first new answer is one sample. Changes land at random points of the workers' poll cycle, so the
samples spread over [load time, INTERVAL + load time].

Per-request cost: Django's test client on an in-process site asking one flag, with the flags inline
(`FLAGS`) and from the database (`DATABASE`, SQLite in memory): the database source does its work in the
poll thread, so a request costs the same.

Exits 0 whatever the numbers: it is a report, not a test (it exits 1 only when it cannot run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benches"))

import pg_cluster  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str, int]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        pid, state, revision = response.read().decode().split()
    return int(pid), state, int(revision)


def propagation(changes: int, interval: float) -> list[float]:
    cluster = pg_cluster.start()
    gunicorn = None
    try:
        os.environ["FERROFLAG_BENCH_DB"] = json.dumps(cluster.settings())
        os.environ["FERROFLAG_BENCH_INTERVAL"] = str(interval)
        import django_db_site  # noqa: F401  (configures Django in this process too, on the same database)
        from django.core.management import call_command
        from ferroflag.django import store

        call_command("migrate", verbosity=0)
        store.save_flag({"key": "bench", "enabled": False})
        port = _free_port()
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
             "--chdir", str(ROOT / "benches"), "django_db_site:application"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "benches"), str(ROOT / "tests")])},
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        pids: set[int] = set()
        while len(pids) < 2:  # both workers up and loaded
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start 2 workers within 30 s")
            try:
                pids.add(_get(url)[0])
            except OSError:
                time.sleep(0.05)
        samples: list[float] = []
        for i in range(changes):
            time.sleep(random.uniform(0.0, interval))  # land anywhere in the poll cycle
            want = "on" if i % 2 == 0 else "off"
            store.set_flag_fields("bench", enabled=want == "on")
            committed = time.monotonic()
            pending = set(pids)
            while pending:
                if time.monotonic() - committed > interval + 10:
                    raise RuntimeError(f"workers {sorted(pending)} did not see the change within {interval + 10} s")
                pid, state, _ = _get(url)
                if pid in pending and state == want:
                    samples.append(time.monotonic() - committed)
                    pending.discard(pid)
                time.sleep(0.002)
        return samples
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(10)
        cluster.remove()


def request_cost(n: int, rounds: int) -> dict[str, float]:
    """µs per request asking one flag, FLAGS vs DATABASE, in this process (Django is configured already)."""
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client, override_settings
    from ferroflag.django import store

    # A second alias at run time: Django's defaults filled in, then registered (settings.DATABASES is that dict).
    memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": "file:bench?mode=memory&cache=shared"}
    connections.settings["mem"] = connections.configure_settings(
        {"default": connections.settings["default"], "mem": memory}
    )["mem"]
    call_command("migrate", database="mem", verbosity=0)
    store.save_flag({"key": "bench", "enabled": True, "percentage": 50}, using="mem")
    results: dict[str, list[float]] = {"FLAGS": [], "DATABASE": []}
    sources = {
        "FLAGS": {"FLAGS": [{"key": "bench", "enabled": True, "percentage": 50}], "ANONYMOUS_COOKIE": None},
        "DATABASE": {"DATABASE": "mem", "INTERVAL": 1.0, "ANONYMOUS_COOKIE": None},
    }
    for _ in range(rounds):
        for name, raw in sources.items():
            with override_settings(FERROFLAG=raw):
                client = Client()
                client.get("/flag")  # the first load
                start = time.perf_counter()
                for _ in range(n):
                    client.get("/flag")
                results[name].append((time.perf_counter() - start) / n * 1e6)
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few changes, few requests")
    parser.add_argument("--interval", type=float, default=1.0, help="the workers' INTERVAL (default 1.0 s)")
    args = parser.parse_args()
    if pg_cluster.bin_dir() is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        print("bench_django_db: PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 1
    changes = 4 if args.quick else 20
    samples = propagation(changes, args.interval)
    version = pg_cluster.bin_dir().parent.name  # type: ignore[union-attr]
    p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
    print(f"Django database source, PostgreSQL {version}, gunicorn -w 2, INTERVAL={args.interval} s")
    print(f"propagation from a commit to each of 2 workers ({len(samples)} samples):")
    print(
        f"  median {statistics.median(samples) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"
        f"   max {max(samples) * 1000:7.1f} ms"
    )
    cost = request_cost(200 if args.quick else 2000, 2 if args.quick else 7)
    print("per request (Django test client, a view asking one flag), µs, median of rounds:")
    for name, value in cost.items():
        print(f"  {name:<9} {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
