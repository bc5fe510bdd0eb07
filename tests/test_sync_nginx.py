"""`FlagSyncClient` against a real nginx serving a static `flags.json` (`path=""`, the full URL).

nginx answers `ETag`/`If-None-Match` itself (its ETag is the file's mtime and size), so this checks
the protocol against a server we did not write. The test runs its own nginx on 127.0.0.1 with every
file (config, pid, logs, temp dirs) in a temp directory; CI installs nginx (`.ci/run`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ferroflag import EvalContext, FlagEvaluator, FlagSyncClient
from flag_server import free_port, wait_until

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (CI installs it: apt-get install nginx)")

CTX = EvalContext("user-1")
CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/json json; }}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        etag on;
    }}
}}
"""


def write_flags(path: Path, document: object, mtime: float | None = None) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(document))
    os.replace(temp, path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def nginx(tmp_path):
    """nginx on a free loopback port serving `tmp_path/www`; yields (base URL, www dir, access log)."""
    (tmp_path / "www").mkdir()
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONF.format(tmp=tmp_path, port=port))
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool:
            if process.poll() is not None:
                log = (tmp_path / "error.log").read_text() if (tmp_path / "error.log").exists() else ""
                raise AssertionError(f"nginx exited with {process.returncode}: {process.stderr.read()!r} {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
            return True

        wait_until(listening, timeout=10, what="nginx to listen")
        yield f"http://127.0.0.1:{port}", tmp_path / "www", tmp_path / "access.log"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        process.stderr.close()


def test_static_flags_json_on_nginx_etag_304_then_change(nginx):
    base, www, access_log = nginx
    flags = www / "flags.json"
    write_flags(flags, [{"key": "alpha", "enabled": True}], mtime=time.time() - 10)
    evaluator = FlagEvaluator()
    client = FlagSyncClient(evaluator, f"{base}/flags.json", path="", interval=0.05, timeout=2.0, backoff_cap=0.2)
    try:
        assert client.start(wait=5) is True
        assert evaluator.is_enabled("alpha", CTX)
        first = client.status()
        assert first.url == f"{base}/flags.json"
        assert (first.etag or "").startswith('"'), first.etag

        status = wait_until(lambda: (s := client.status()).not_modified >= 5 and s, what="nginx's 304s")
        assert (status.successes, status.failures, status.etag) == (1, 0, first.etag)
        assert status.snapshot_version == evaluator.version == 1, "a 304 neither parses nor swaps"
        codes = [line.split('"')[2].split()[0] for line in access_log.read_text().splitlines()]
        assert codes[0] == "200", codes
        assert codes.count("304") >= 5, codes

        # nginx's ETag is mtime + size: move the mtime so the change shows even within one second.
        write_flags(
            flags, [{"key": "alpha", "enabled": False}, {"key": "beta", "enabled": True}], mtime=time.time() + 2
        )
        wait_until(lambda: "beta" in evaluator, what="the rewritten file")
        assert not evaluator.is_enabled("alpha", CTX)
        status = client.status()
        assert status.successes == 2
        assert status.etag != first.etag
        assert status.snapshot_version == 2

        flags.unlink()
        status = wait_until(lambda: (s := client.status()).consecutive_failures >= 2 and s, what="the 404s")
        assert "HTTP 404" in status.last_error
        assert status.stale
        assert evaluator.is_enabled("beta", CTX)
    finally:
        client.stop()
