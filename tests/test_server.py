"""`ferroflag serve`: the flag service on loopback. ETag/304, gzip, health, reload, broken edits,
concurrent clients and shutdown. Every wait is bounded."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ferroflag import ConfigError
from ferroflag.server import FLAGS_PATH, HEALTH_PATH, FlagService, _accepts_gzip, _etag_matches

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flags.json"
WAIT = 5.0  # seconds: the longest any test waits for a reload or a process


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()}"'


def wait_for(predicate, timeout=WAIT, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def flag_file(tmp_path):
    path = tmp_path / "flags.json"
    path.write_bytes(EXAMPLE.read_bytes())
    return path


@pytest.fixture
def service(flag_file):
    with FlagService(flag_file, "127.0.0.1", 0, poll_interval=0.05, shutdown_grace=2.0) as svc:
        yield svc


def request(service_or_url, path=FLAGS_PATH, headers=None, method="GET"):
    base = service_or_url if isinstance(service_or_url, str) else service_or_url.url
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def replace_file(path: Path, content: bytes) -> None:
    """Writes a new version the way editors and deploy scripts do: a temporary file, then a rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


# -- GET /api/flags


def test_serves_the_file_with_a_strong_etag(service, flag_file):
    status, headers, body = request(service)
    assert status == 200
    assert body == flag_file.read_bytes()
    assert headers["etag"] == etag_of(body)
    assert not headers["etag"].startswith("W/")
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert headers["cache-control"] == "no-cache"
    assert headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in headers
    assert service.flags_url == service.url + FLAGS_PATH
    assert service.url.startswith("http://127.0.0.1:")
    assert not service.url.endswith(":0")


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ("{etag}", 304),
        ("W/{etag}", 304),
        ('"other", {etag}', 304),
        ("*", 304),
        ('"other"', 200),
        ("{etag_unquoted}", 200),
        ('"{hash}-gzip"', 304),  # the gzip representation's tag revalidates too
    ],
)
def test_if_none_match(service, flag_file, if_none_match, status):
    body = flag_file.read_bytes()
    etag = etag_of(body)
    header = if_none_match.format(etag=etag, etag_unquoted=etag.strip('"'), hash=etag.strip('"'))
    got, headers, got_body = request(service, headers={"If-None-Match": header})
    assert got == status
    assert headers["etag"] == etag
    assert got_body == (b"" if status == 304 else body)
    if status == 304:
        assert "content-length" not in headers


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("*;q=0", False),
        ("identity", False),
        ("deflate", False),
        (None, False),
    ],
)
def test_gzip_when_the_client_accepts_it(service, flag_file, accept_encoding, gzipped):
    body = flag_file.read_bytes()
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    status, got, raw = request(service, headers=headers)
    assert status == 200
    assert got["vary"] == "Accept-Encoding"
    if gzipped:
        assert got["content-encoding"] == "gzip"
        assert got["etag"] == etag_of(body)[:-1] + '-gzip"'
        assert len(raw) < len(body)
        assert gzip.decompress(raw) == body
    else:
        assert "content-encoding" not in got
        assert raw == body


def test_gzip_304(service, flag_file):
    _, headers, _ = request(service, headers={"Accept-Encoding": "gzip"})
    status, again, body = request(service, headers={"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    assert again["etag"] == headers["etag"]


def test_head(service, flag_file):
    status, headers, body = request(service, method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["etag"] == etag_of(flag_file.read_bytes())
    assert headers["content-length"] == str(len(flag_file.read_bytes()))


def test_health_not_found_and_method_not_allowed(service):
    status, headers, body = request(service, HEALTH_PATH)
    assert status == 200
    assert headers["cache-control"] == "no-store"
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["flags"] == 5
    assert health["etag"] == service.document.etag
    assert health["generation"] == 1
    assert health["last_error"] is None
    status, _, body = request(service, "/api/flag")
    assert status == 404
    assert json.loads(body)["error"] == "not found"
    status, headers, _ = request(service, method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert request(service, FLAGS_PATH + "?env=prod")[0] == 200  # a query string is ignored


def test_keep_alive_serves_several_requests_on_one_connection(service):
    parts = urlsplit(service.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)
    try:
        for _ in range(3):
            conn.request("GET", FLAGS_PATH)
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        conn.request("GET", FLAGS_PATH, headers={"If-None-Match": service.document.etag})
        response = conn.getresponse()
        assert response.status == 304
        response.read()
    finally:
        conn.close()


def test_access_log_line_per_request(service, caplog):
    caplog.set_level(logging.INFO, logger="ferroflag.server.access")
    request(service)
    request(service, headers={"If-None-Match": service.document.etag})
    request(service, "/nope")
    assert wait_for(lambda: len([r for r in caplog.records if r.name == "ferroflag.server.access"]) >= 3)
    lines = [r.getMessage() for r in caplog.records if r.name == "ferroflag.server.access"]
    assert len(lines) == 3
    assert '127.0.0.1 "GET /api/flags HTTP/1.1" 200 ' in lines[0]
    assert '"GET /api/flags HTTP/1.1" 304 0 ' in lines[1]
    assert '"GET /nope HTTP/1.1" 404 ' in lines[2]


# -- reloading


def test_reloads_when_the_file_changes(service, flag_file):
    old_etag = service.document.etag
    new = b'[{"key": "only-one", "enabled": true}]'
    replace_file(flag_file, new)
    assert wait_for(lambda: request(service)[2] == new)
    status, headers, _ = request(service, headers={"If-None-Match": old_etag})
    assert status == 200
    assert headers["etag"] == etag_of(new)
    assert service.document.generation == 2
    assert json.loads(request(service, HEALTH_PATH)[2])["flags"] == 1


def test_reloads_an_in_place_edit_with_the_same_size_and_mtime(service, flag_file):
    # Same length, and the old mtime put back: only re-reading the (recent) file can notice.
    before = flag_file.stat()
    body = flag_file.read_bytes()
    changed = body.replace(b'"percentage": 30', b'"percentage": 31')
    assert len(changed) == len(body)
    assert changed != body
    flag_file.write_bytes(changed)
    os.utime(flag_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert wait_for(lambda: request(service)[2] == changed)


def test_a_broken_edit_keeps_the_last_good_document(service, flag_file, caplog):
    caplog.set_level(logging.INFO, logger="ferroflag.server")
    good = flag_file.read_bytes()
    good_etag = service.document.etag
    replace_file(flag_file, b'[{"key": "x", "enabled": "yes"}]')
    assert wait_for(lambda: service.last_error is not None)
    status, headers, body = request(service)
    assert (status, body, headers["etag"]) == (200, good, good_etag)
    assert request(service, headers={"If-None-Match": good_etag})[0] == 304
    health = json.loads(request(service, HEALTH_PATH)[2])
    assert health["status"] == "stale"
    assert 'field "enabled"' in health["last_error"]
    time.sleep(0.3)  # several more polls of the same broken content: logged once
    errors = [r for r in caplog.records if r.name == "ferroflag.server" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "still serving the last good document" in errors[0].getMessage()
    assert 'field "enabled"' in errors[0].getMessage()
    # A second, different breakage is logged too; then a good edit is served again.
    replace_file(flag_file, b"[{")
    assert wait_for(lambda: "not valid JSON" in (service.last_error or ""))
    fixed = b'[{"key": "x", "enabled": true}]'
    replace_file(flag_file, fixed)
    assert wait_for(lambda: request(service)[2] == fixed)
    assert service.last_error is None
    assert json.loads(request(service, HEALTH_PATH)[2])["status"] == "ok"


def test_a_deleted_file_keeps_the_last_good_document(service, flag_file):
    good = flag_file.read_bytes()
    flag_file.unlink()
    assert wait_for(lambda: service.last_error is not None)
    assert "cannot read" in (service.last_error or "")
    assert request(service)[2] == good
    flag_file.write_bytes(good)  # restored unchanged: healthy again, same document
    assert wait_for(lambda: service.last_error is None)
    assert service.document.generation == 1


def test_a_broken_file_at_start_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"flags": 1}')
    with pytest.raises(ConfigError):
        FlagService(bad, port=0)
    with pytest.raises(FileNotFoundError):
        FlagService(tmp_path / "missing.json", port=0)


def test_check_reports_whether_a_new_document_is_served(flag_file):
    # No background threads: drive the watcher by hand.
    svc = FlagService(flag_file, port=0, poll_interval=60)
    try:
        assert svc.check() is False
        replace_file(flag_file, b"[]")
        assert svc.check() is True
        assert svc.document.flags == 0
        assert svc.check() is False
        replace_file(flag_file, b"nope")
        assert svc.check() is False
        assert svc.document.body == b"[]"
    finally:
        svc.close()


# -- concurrency and shutdown


def test_ten_concurrent_clients_during_reloads(service, flag_file):
    versions = [EXAMPLE.read_bytes(), b'[{"key": "a", "enabled": true}]', b'{"flags": []}']
    stop = threading.Event()

    def flip():
        for i in range(20):
            if stop.is_set():
                return
            replace_file(flag_file, versions[i % len(versions)])
            time.sleep(0.03)

    def client(n):
        answers = []
        etag = None
        for _ in range(25):
            req = urllib.request.Request(service.flags_url, headers={"If-None-Match": etag} if etag else {})
            try:
                with urllib.request.urlopen(req, timeout=WAIT) as response:
                    body = response.read()
                    answers.append((response.status, response.headers["ETag"], etag_of(body), body in versions))
            except urllib.error.HTTPError as error:  # urllib raises for a 304
                answers.append((error.code, error.headers["ETag"], etag, True))
            etag = answers[-1][1]
        return answers

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(client, range(10), timeout=30))
    finally:
        stop.set()
        flipper.join(timeout=WAIT)
    assert len(results) == 10
    for answers in results:
        assert len(answers) == 25
        for status, etag, expected, known in answers:
            # Never half a document: the ETag always belongs to the body it came with (or, on a 304,
            # is the one the client sent).
            assert status in (200, 304)
            assert etag == expected
            assert known


def test_close_does_not_wait_for_idle_keep_alive_connections(flag_file):
    before = set(threading.enumerate())
    svc = FlagService(flag_file, port=0, poll_interval=0.05, shutdown_grace=2.0)
    svc.start()
    parts = urlsplit(svc.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)
    try:
        conn.request("GET", FLAGS_PATH)
        conn.getresponse().read()  # the connection stays open, idle
        started = time.monotonic()
        svc.close()
        assert time.monotonic() - started < 2.0
        # The service's own threads are gone (others, such as a change listener of an earlier test, may live on).
        assert not any(t.name.startswith("ferroflag-") and t.is_alive() for t in set(threading.enumerate()) - before)
    finally:
        conn.close()
    with pytest.raises(ConnectionRefusedError):
        request(svc.url)
    svc.close()  # twice is fine


def test_accept_encoding_and_if_none_match_parsing():
    assert _accepts_gzip("GZIP")
    assert _accepts_gzip("x-gzip")
    assert _accepts_gzip("deflate;q=0.5, gzip ; q=0.1")
    assert not _accepts_gzip("gzip;q=0.000")
    assert not _accepts_gzip("gzip;q=zero")
    assert not _accepts_gzip("")
    assert _etag_matches(' "a" , "b"', ('"b"',))
    assert not _etag_matches('"a"', ('"b"',))


# -- `python -m ferroflag serve` as a real process


def _start_server(path, *extra):
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferroflag", "serve", str(path), "--port", "0", "--poll-interval", "0.1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        first = lines.get(timeout=30)
    except queue.Empty:
        proc.kill()
        proc.communicate(timeout=WAIT)
        pytest.fail("ferroflag serve printed nothing")
    return proc, first


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_process_prints_its_url_and_stops_on_signal(flag_file, signum):
    proc, first = _start_server(flag_file)
    try:
        assert first.startswith(f"ferroflag: serving {flag_file} at http://127.0.0.1:")
        url = first.split()[-1]
        assert url.endswith(FLAGS_PATH)
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            assert response.read() == flag_file.read_bytes()
        started = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=WAIT)
        assert time.monotonic() - started < 3.0
        assert proc.returncode == 0
        assert f"{signal.Signals(signum).name} received: shutting down" in err
        assert '"GET /api/flags HTTP/1.1" 200' in err  # the access log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=WAIT)


def test_serve_process_logs_a_broken_edit(flag_file):
    proc, first = _start_server(flag_file, "--no-access-log")
    try:
        url = first.split()[-1]
        good = flag_file.read_bytes()
        replace_file(flag_file, b'[{"key": 1, "enabled": true}]')
        health_url = url.removesuffix(FLAGS_PATH) + HEALTH_PATH

        def stale():
            with urllib.request.urlopen(health_url, timeout=WAIT) as response:
                return json.loads(response.read())["status"] == "stale"

        assert wait_for(stale)
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            assert response.read() == good
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0
        assert "ERROR ferroflag.server" in err
        assert 'field "key": expected a string' in err
        assert "still serving the last good document" in err
        assert "ferroflag.server.access" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=WAIT)
