"""`FlagSyncClient` and `FlagFileWatcher` against a scripted flag service on 127.0.0.1 and files in a
temp directory: the evaluator's answers, `status()` and the `ferroflag` log records for each fault.

Every wait is bounded (see `flag_server.wait_until`); intervals and backoff caps are a few tens of
milliseconds so that each test takes about a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from ferroflag import EvalContext, FlagEvaluator, FlagFileWatcher, FlagSyncClient, SyncStatus
from flag_server import FlagServer, Reply, free_port, hang, ok, slow, status, truncated, wait_until

DOC1 = [{"key": "alpha", "enabled": True}]
DOC2 = {"flags": [{"key": "alpha", "enabled": False}, {"key": "beta", "enabled": True}]}
CTX = EvalContext("user-1")
SECRET = "Bearer s3cr3t-t0ken-4711"
FAST = {"interval": 0.05, "timeout": 1.0, "connect_timeout": 0.5, "backoff_cap": 0.2}


@pytest.fixture
def server():
    with FlagServer(DOC1, '"v1"') as server:
        yield server


@pytest.fixture
def make_client():
    """Builds clients with fast settings and stops every one of them at teardown."""
    clients: list[FlagSyncClient | FlagFileWatcher] = []

    def make(evaluator: FlagEvaluator, url: str, **kwargs) -> FlagSyncClient:
        client = FlagSyncClient(evaluator, url, **{**FAST, **kwargs})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.DEBUG, logger="ferroflag")
    return caplog


def records(caplog, client, level: int | None = None) -> list[logging.LogRecord]:
    """The `ferroflag` records written for `client` (at `level`, if given)."""
    source = client.path if isinstance(client, FlagFileWatcher) else client.url
    return [
        r
        for r in caplog.records
        if r.name == "ferroflag"
        and getattr(r, "ferroflag_source", None) == source
        and (level is None or r.levelno == level)
    ]


def wait_for_record(caplog, client, event: str) -> logging.LogRecord:
    """The first record of `event` (a `SyncEvent` kind) for `client`, waiting for it: the sync thread
    writes it just after it updates the status, so a test that saw the status may be a moment early."""
    return wait_until(
        lambda: next((r for r in records(caplog, client) if r.ferroflag_event == event), None), what=f"a {event} record"
    )


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in (SECRET, "s3cr3t", "querysecret", "pa55word"):
            assert secret not in str(text), text


def assert_records_clean(caplog) -> None:
    for record in caplog.records:
        assert_no_secret(record.getMessage(), record.__dict__)


# ---------------------------------------------------------------------------------------------------
# The happy path: ETag / If-None-Match / 304


def test_first_200_is_applied_then_304s_change_nothing(server, make_client, log):
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url, headers={"Authorization": SECRET})
    started = time.time()
    assert client.start(wait=5) is True
    assert evaluator.is_enabled("alpha", CTX) is True
    status = wait_until(lambda: (s := client.status()).not_modified >= 3 and s, what="three 304s")
    assert status.ready
    assert status.running
    assert not status.stale
    assert (status.source, status.etag, status.successes, status.failures) == ("network", '"v1"', 1, 0)
    assert status.snapshot_version == evaluator.version == 1, "a 304 neither parses nor swaps"
    assert started <= status.last_success <= time.time()
    assert status.last_error is None
    assert status.last_error_at is None
    assert 0 <= status.next_attempt_in <= FAST["interval"]
    requests = server.requests
    assert requests[0].path == "/api/flags"
    assert requests[0].header("If-None-Match") is None
    assert all(r.header("If-None-Match") == '"v1"' for r in requests[1:])
    assert all(r.header("Authorization") == SECRET for r in requests), "the header is sent"

    server.set_document(DOC2, '"v2"')
    wait_until(lambda: evaluator.version == 2, what="the new document")
    assert (evaluator.is_enabled("alpha", CTX), evaluator.is_enabled("beta", CTX)) == (False, True)
    status = wait_until(lambda: (s := client.status()).etag == '"v2"' and s)
    assert status.successes == 2
    assert status.snapshot_version == 2

    wait_until(lambda: len(records(log, client, logging.INFO)) >= 2, what="two records")
    applied = [r.getMessage() for r in records(log, client, logging.INFO)]
    assert applied[:2] == [
        'applied flags from network as version 1 (ETag "v1")',
        'applied flags from network as version 2 (ETag "v2")',
    ]
    assert records(log, client, logging.ERROR) == []
    assert_no_secret(repr(client), repr(status), status.to_dict(), client.url)
    assert_records_clean(log)


# ---------------------------------------------------------------------------------------------------
# Faults: each keeps the last good snapshot, shows in status(), is logged once per streak, and the
# next good response is applied.

FAULTS = {
    "http_500": (status(500), {}, "server answered HTTP 500 Internal Server Error"),
    "http_503": (status(503), {}, "HTTP 503"),
    "invalid_json": (ok(b'{"flags": [', '"bad"'), {}, "rejected the response"),
    "rejected_document": (ok([{"key": "x"}], '"bad"'), {}, "rejected the response"),
    "truncated_body": (truncated(DOC2, '"bad"'), {}, "closed before the whole response arrived"),
    "oversized_body": (
        ok([{"key": f"k{i}", "enabled": True} for i in range(100)], '"big"'),
        {"max_body_bytes": 1024},
        "larger than the limit of 1024 bytes",
    ),
    "slower_than_timeout": (slow(3.0, ok(DOC2, '"slow"')), {"timeout": 0.3}, "timed out"),
    "redirect": (Reply(302, (("Location", "/elsewhere"),)), {}, "redirects are not followed"),
    "unauthorized": (status(401), {}, "HTTP 401"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_keeps_the_last_good_flags_and_recovers(fault, server, make_client, log):
    reply, settings, error = FAULTS[fault]
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url, headers={"X-Api-Key": SECRET}, **settings)
    assert client.start(wait=5)

    server.always(reply)
    status = wait_until(lambda: (s := client.status()).consecutive_failures >= 3 and s, what="3 failures")
    assert (evaluator.version, evaluator.is_enabled("alpha", CTX)) == (1, True), "the last good flags stay"
    assert "beta" not in evaluator
    assert (status.ready, status.stale, status.etag) == (True, True, '"v1"'), "nor is the ETag replaced"
    assert status.snapshot_version == 1
    assert status.successes == 1
    assert error in status.last_error, status.last_error
    assert status.last_error.startswith(f"GET {client.url}: ")
    assert status.last_error_at >= status.last_success
    assert all(r.path == "/api/flags" for r in server.requests), "a redirect is not followed"

    server.always(None)
    server.set_document(DOC2, '"v2"')
    wait_until(lambda: evaluator.version == 2, what="recovery")
    assert evaluator.is_enabled("beta", CTX)
    status = wait_until(lambda: (s := client.status()).consecutive_failures == 0 and s)
    assert not status.stale
    assert status.etag == '"v2"'
    assert status.failures >= 3

    errors = records(log, client, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert error in errors[0].getMessage()
    expected = "refused the credentials" if fault == "unauthorized" else "keeping the last good flags"
    assert expected in errors[0].getMessage()
    wait_for_record(log, client, "recovered")
    recovered = [r for r in records(log, client, logging.INFO) if r.ferroflag_event == "recovered"]
    assert len(recovered) == 1
    assert recovered[0].getMessage().startswith("flag sync recovered after ")
    assert_no_secret(repr(client), repr(status), status.last_error)
    assert_records_clean(log)


def test_one_failure_record_per_streak(server, make_client, log):
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url)
    assert client.start(wait=5)
    for streak in (1, 2):
        server.always(status(500))
        wait_until(lambda: client.status().consecutive_failures >= 3)
        server.always(None)
        wait_until(lambda: client.status().consecutive_failures == 0)
        assert len(records(log, client, logging.ERROR)) == streak
    assert client.status().failures >= 6


def test_retry_after_is_honoured(server, make_client):
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url, backoff_cap=5.0)
    assert client.start(wait=5)
    server.script(status(429, ("Retry-After", "1")))
    status_ = wait_until(lambda: (s := client.status()).failures == 1 and s, what="the 429")
    assert "HTTP 429" in status_.last_error
    assert "Retry-After 1 s" in status_.last_error
    assert status_.next_attempt_in > 0.5
    failed_at = len(server.requests)
    requests = server.wait_for_requests(failed_at + 1, timeout=5)
    gap = requests[failed_at].at - requests[failed_at - 1].at
    assert gap >= 0.9, f"the retry came {gap:.3f} s after the 429"
    wait_until(lambda: client.status().consecutive_failures == 0)


def test_nothing_listening_start_returns_false_quickly_then_recovers(make_client, log):
    port = free_port()
    evaluator = FlagEvaluator()
    client = make_client(evaluator, f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert client.start(wait=0.5) is False
    assert time.monotonic() - started < 1.0
    # The app evaluates with what it has: nothing yet, so defaults.
    assert evaluator.is_enabled("alpha", CTX, default=True) is True
    assert evaluator.evaluate("alpha", CTX).reason == "not_found"
    status = client.status()
    assert (status.ready, status.running, status.source, status.stale) == (False, True, "none", False)
    assert status.failures >= 1
    assert "connection refused" in status.last_error

    with FlagServer(DOC1, '"v1"', port=port):
        assert client.wait_ready(5) is True
        assert evaluator.is_enabled("alpha", CTX)
        assert client.status().source == "network"
    assert wait_for_record(log, client, "recovered").levelno == logging.INFO
    assert len(records(log, client, logging.ERROR)) == 1


# ---------------------------------------------------------------------------------------------------
# The GIL and stop()


def test_python_threads_run_while_a_fetch_hangs(server, make_client):
    server.always(hang())
    client = make_client(FlagEvaluator(), server.url, timeout=5.0)
    count = 0
    stop = threading.Event()

    def counter():
        nonlocal count
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=counter)
    thread.start()
    try:
        # start() waits with the GIL released, and the sync thread never holds it while fetching.
        assert client.start(wait=0.5) is False
        server.wait_for_requests(1)
        during_start = count
        time.sleep(0.3)
        during_hang = count - during_start
    finally:
        stop.set()
        thread.join(timeout=5)
    assert min(during_start, during_hang) > 10_000, (during_start, during_hang)
    assert (len(server.requests), client.status().failures) == (1, 0), "the fetch was still hanging"


def test_stop_is_prompt_mid_interval_and_idempotent(server, make_client):
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url, interval=30.0)
    assert client.start(wait=5)
    time.sleep(0.1)
    started = time.monotonic()
    assert client.stop() is True
    assert time.monotonic() - started < 1.0
    assert client.status().running is False
    assert client.status().next_attempt_in is None
    started = time.monotonic()
    assert client.stop() is True
    assert time.monotonic() - started < 0.1


def test_stop_is_prompt_during_a_hung_request(server, make_client):
    server.always(hang())
    client = make_client(FlagEvaluator(), server.url, timeout=30.0)
    client.start(wait=0)
    server.wait_for_requests(1)
    time.sleep(0.1)
    started = time.monotonic()
    assert client.stop() is True
    assert time.monotonic() - started < 1.0
    status = client.status()
    assert not status.running
    assert status.failures == 0, "an interrupted request is no failure"


def test_start_after_stop_resumes_from_the_same_etag(server, make_client):
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url)
    assert client.start(wait=5)
    client.stop()
    seen = len(server.requests)
    assert client.start(wait=5) is True
    assert client.status().running
    requests = server.wait_for_requests(seen + 1)
    assert requests[seen].header("If-None-Match") == '"v1"'
    wait_until(lambda: client.status().not_modified >= 1)
    assert evaluator.version == 1


def test_context_manager_starts_and_stops(server):
    evaluator = FlagEvaluator()
    with FlagSyncClient(evaluator, server.url, **FAST) as client:
        assert client.status().ready
        assert client.status().running
        assert evaluator.is_enabled("alpha", CTX)
    assert not client.status().running


def test_start_async_in_an_event_loop(server, make_client):
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url)
    dead = make_client(FlagEvaluator(), f"http://127.0.0.1:{free_port()}")

    async def lifespan():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        ready = await client.start_async(wait=5)
        started = time.monotonic()
        not_ready = await dead.start_async(wait=0.3)
        waited = time.monotonic() - started
        task.cancel()
        return ready, not_ready, waited, ticks

    ready, not_ready, waited, ticks = asyncio.run(lifespan())
    assert ready is True
    assert evaluator.is_enabled("alpha", CTX)
    assert not_ready is False
    assert 0.25 < waited < 1.0
    assert ticks >= 10, "the event loop kept running while start_async waited"
    with pytest.raises(RuntimeError, match="no running event loop"):
        client.start_async()


# ---------------------------------------------------------------------------------------------------
# The cache file


def cache_client(make_client, url, cache_path, evaluator=None):
    evaluator = evaluator or FlagEvaluator()
    return evaluator, make_client(evaluator, url, cache_path=cache_path)


def test_cache_holds_the_last_good_document_and_a_bad_200_never_overwrites_it(server, make_client, tmp_path):
    cache = tmp_path / "state" / "flags-cache.json"
    evaluator, client = cache_client(make_client, server.url, cache)
    assert client.start(wait=5)
    wait_until(cache.exists, what="the cache file")
    saved = json.loads(cache.read_text())
    assert saved["flags"] == DOC1
    assert saved["x-ferroflag-cache"]["etag"] == '"v1"'
    good = cache.read_bytes()

    for bad in (ok(b"{nope", '"bad"'), ok([{"enabled": True}], '"bad"'), truncated(DOC2, '"bad"')):
        server.always(bad)
        failures = client.status().failures
        wait_until(lambda f=failures: client.status().failures >= f + 2)
        assert cache.read_bytes() == good
    assert evaluator.version == 1

    server.always(None)
    server.set_document(DOC2, '"v2"')
    wait_until(lambda: "beta" in cache.read_text(), what="the new document in the cache")
    assert json.loads(cache.read_text())["x-ferroflag-cache"]["etag"] == '"v2"'
    assert [p.name for p in cache.parent.iterdir()] == [cache.name], "no temp file left behind"


def test_restart_during_an_outage_serves_the_cache(make_client, tmp_path, log):
    cache = tmp_path / "flags-cache.json"
    port = free_port()
    with FlagServer(DOC2, '"v2"', port=port) as server:
        _, client = cache_client(make_client, server.url, cache)
        assert client.start(wait=5)
        wait_until(cache.exists)
        client.stop()

    # A new process, as it were, while the service is down.
    evaluator, client = cache_client(make_client, f"http://127.0.0.1:{port}", cache)
    assert client.start(wait=5) is True
    status = wait_until(lambda: (s := client.status()).failures >= 1 and s, what="the first failure")
    assert (status.ready, status.source, status.etag, status.stale) == (True, "cache", '"v2"', True)
    assert "connection refused" in status.last_error
    assert evaluator.is_enabled("beta", CTX)
    assert not evaluator.is_enabled("alpha", CTX)
    wait_for_record(log, client, "cache_loaded")
    warnings = records(log, client, logging.WARNING)
    assert [r.ferroflag_event for r in warnings] == ["cache_loaded"]
    assert warnings[0].getMessage().startswith("serving cached flags as version 1")

    with FlagServer(DOC2, '"v2"', port=port) as server:
        # The cached ETag is sent; the service's 304 confirms the cached flags as its own.
        wait_until(lambda: client.status().source == "network", what="the 304")
        assert server.requests[0].header("If-None-Match") == '"v2"'
        assert evaluator.version == 1
        assert client.status().successes == 0


def test_a_corrupt_cache_is_ignored_with_a_warning(make_client, tmp_path, log):
    cache = tmp_path / "flags-cache.json"
    cache.write_text('{"flags": [{"key": ')
    evaluator, client = cache_client(make_client, f"http://127.0.0.1:{free_port()}", cache)
    assert client.start(wait=0.3) is False
    assert evaluator.version == 0
    assert client.status().source == "none"
    warning = wait_for_record(log, client, "cache_ignored")
    assert warning.levelno == logging.WARNING
    assert warning.ferroflag_event == "cache_ignored"
    assert "ignoring the flag cache file" in warning.getMessage()
    assert cache.read_text() == '{"flags": [{"key": ', "left for a person to look at"


# ---------------------------------------------------------------------------------------------------
# Secrets


def test_secrets_never_show(make_client, log):
    evaluator = FlagEvaluator()
    url = f"http://user:pa55word@127.0.0.1:{free_port()}/flags.json?token=querysecret"
    client = make_client(evaluator, url, path="", headers={"Authorization": SECRET, "X-Team": "flags"})
    assert client.url == f"http://<redacted>@127.0.0.1:{url.split(':')[3].split('/')[0]}/flags.json?<redacted>"
    assert repr(client).endswith("headers={'Authorization': '<redacted>', 'X-Team': '<redacted>'}, running=False)")
    client.start(wait=0.2)
    status = client.status()
    assert status.last_error
    assert status.url == client.url
    assert_no_secret(repr(client), repr(status), status.to_dict(), status.last_error)
    wait_until(lambda: records(log, client, logging.ERROR))
    assert_records_clean(log)
    with pytest.raises(ValueError, match="X-Key") as error:
        FlagSyncClient(evaluator, "http://h", headers={"X-Key": "bad\nquerysecret"})
    assert_no_secret(error.value)
    with pytest.raises(ValueError, match="the scheme must be http or https") as error:
        FlagSyncClient(evaluator, "ftp://user:pa55word@h/?token=querysecret", path="")
    assert_no_secret(error.value)


# ---------------------------------------------------------------------------------------------------
# Arguments and the status object


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"evaluator": {}}, TypeError, "evaluator must be a FlagEvaluator, got dict"),
        ({"api_url": "ftp://h"}, ValueError, "the scheme must be http or https"),
        ({"api_url": "not a url"}, ValueError, "invalid flag service URL"),
        ({"api_url": "http://h?x=1"}, ValueError, 'pass the full URL and path=""'),
        ({"interval": 0}, ValueError, "interval must be a positive number of seconds, got 0.0"),
        ({"interval": -1.5}, ValueError, "interval must be a positive number of seconds, got -1.5"),
        ({"interval": float("nan")}, ValueError, "interval must be a positive number"),
        ({"timeout": float("inf")}, ValueError, "timeout must be a positive number"),
        ({"connect_timeout": 0}, ValueError, "connect_timeout must be"),
        ({"backoff_cap": -1}, ValueError, "backoff_cap must be"),
        ({"max_body_bytes": 0}, ValueError, "max_body_bytes must be a positive number of bytes, got 0"),
        ({"headers": [("A", "b")]}, TypeError, "headers must be a dict of str to str, got list"),
        ({"headers": {"A": 1}}, TypeError, 'the value of "A" is int'),
        ({"headers": {1: "x"}}, TypeError, "a header name is int"),
        ({"headers": {"bad name": "x"}}, ValueError, "not a valid header name"),
        ({"headers": {"If-None-Match": "x"}}, ValueError, "sends If-None-Match itself"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, ValueError, "cannot use CA bundle"),
        ({"interval": "10"}, TypeError, "interval"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"evaluator": FlagEvaluator(), "api_url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(error, match=match):
        FlagSyncClient(args.pop("evaluator"), args.pop("api_url"), **args)


def test_bad_waits(server, make_client):
    client = make_client(FlagEvaluator(), server.url)
    for call in (client.start, client.wait_ready):
        with pytest.raises(ValueError, match=r"must be zero or a positive number of seconds, got -1\.0"):
            call(-1)
    assert not client.status().running


def test_status_is_plain_data(server, make_client):
    client = make_client(FlagEvaluator(), server.url)
    assert client.status() == client.status(), "equal before start"
    client.start(wait=5)
    status = client.status()
    assert isinstance(status, SyncStatus)
    data = status.to_dict()
    assert data == {name: getattr(status, name) for name in data}
    assert sorted(data) == sorted(n for n in dir(status) if not n.startswith("_") and n != "to_dict")
    json.dumps(data)
    assert repr(status).startswith("SyncStatus(ready=True, running=True, source='network', etag='\"v1\"', ")
    with pytest.raises(TypeError, match="unhashable"):
        hash(status)
    with pytest.raises(AttributeError):
        status.ready = False


def test_repr_and_url(server, make_client):
    client = make_client(FlagEvaluator(), server.url + "/", path="flags")
    assert client.url == f"{server.url}/flags"
    assert repr(client) == f"FlagSyncClient('{server.url}/flags', interval=0.05, running=False)"
    client.start(wait=0)
    assert repr(client).endswith("running=True)")


# ---------------------------------------------------------------------------------------------------
# Interpreter exit


def test_interpreter_exit_with_a_running_client_neither_hangs_nor_raises(server):
    server.always(hang())
    code = textwrap.dedent(
        f"""
        import logging, time
        logging.basicConfig(level=logging.DEBUG)
        from ferroflag import FlagEvaluator, FlagSyncClient
        hung = FlagSyncClient(FlagEvaluator(), {server.url!r}, interval=0.05, timeout=30)
        dead = FlagSyncClient(FlagEvaluator(), "http://127.0.0.1:{free_port()}", interval=0.01, backoff_cap=0.01)
        hung.start(wait=0)
        dead.start(wait=0.1)
        time.sleep(0.2)
        print("exiting", flush=True)
        """
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting\n"
    assert "Traceback" not in result.stderr, result.stderr
    assert "panicked" not in result.stderr, result.stderr
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------------------------------
# The file watcher


def write_atomically(path: Path, document: object) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(document if isinstance(document, str) else json.dumps(document))
    os.replace(temp, path)


@pytest.fixture
def watch(tmp_path):
    watchers: list[FlagFileWatcher] = []

    def make(document: object | None = DOC1):
        path = tmp_path / "flags.json"
        if document is not None:
            write_atomically(path, document)
        evaluator = FlagEvaluator()
        watcher = FlagFileWatcher(evaluator, path, interval=0.05)
        watchers.append(watcher)
        return path, evaluator, watcher

    yield make
    for watcher in watchers:
        watcher.stop()


def test_file_watcher_reloads_and_keeps_the_old_flags_on_a_broken_edit(watch, log):
    path, evaluator, watcher = watch()
    assert watcher.start(wait=5) is True
    assert evaluator.is_enabled("alpha", CTX)
    status = watcher.status()
    assert (status.source, status.url, status.snapshot_version) == ("file", str(path), 1)
    assert status.etag.startswith("sha256:")
    assert watcher.path == str(path)
    assert repr(watcher).startswith(f"FlagFileWatcher({str(path)!r}, interval=0.05")

    write_atomically(path, DOC2)
    wait_until(lambda: "beta" in evaluator, what="the reload")
    assert not evaluator.is_enabled("alpha", CTX)
    assert watcher.status().successes == 2

    write_atomically(path, '{"flags": [{"key": "gamma"}]}')
    status = wait_until(lambda: (s := watcher.status()).consecutive_failures >= 1 and s, what="the broken edit")
    assert status.stale
    assert "rejected" in status.last_error
    assert str(path) in status.last_error
    assert evaluator.version == 2
    assert "beta" in evaluator
    assert "gamma" not in evaluator
    wait_for_record(log, watcher, "failure_streak_started")
    errors = records(log, watcher, logging.ERROR)
    assert len(errors) == 1
    assert "rejected" in errors[0].getMessage()

    write_atomically(path, [{"key": "gamma", "enabled": True}])
    wait_until(lambda: "gamma" in evaluator, what="the fixed edit")
    assert watcher.status().consecutive_failures == 0
    assert wait_for_record(log, watcher, "recovered").levelno == logging.INFO
    started = time.monotonic()
    assert watcher.stop() is True
    assert time.monotonic() - started < 1.0


def test_file_watcher_on_a_missing_file_reports_and_waits_for_it(watch):
    path, evaluator, watcher = watch(document=None)
    assert watcher.start(wait=0.2) is False
    status = watcher.status()
    assert status.running
    assert not status.ready
    assert "cannot read flag file" in status.last_error
    write_atomically(path, DOC1)
    assert watcher.wait_ready(5) is True
    assert evaluator.is_enabled("alpha", CTX)


def test_file_watcher_context_manager_and_arguments(watch, tmp_path):
    path, evaluator, _ = watch()
    with FlagFileWatcher(evaluator, path, interval=0.05) as watcher:
        assert watcher.status().ready
    assert not watcher.status().running
    with pytest.raises(ValueError, match="interval must be a positive number of seconds"):
        FlagFileWatcher(evaluator, path, interval=0)
    with pytest.raises(ValueError, match="max_bytes must be a positive number of bytes"):
        FlagFileWatcher(evaluator, path, max_bytes=-1)
    with pytest.raises(TypeError, match="evaluator must be a FlagEvaluator"):
        FlagFileWatcher(None, path)


def test_a_started_client_keeps_polling_without_a_reference():
    # In a child interpreter: the unreferenced client polls until that interpreter exits.
    code = textwrap.dedent(
        """
        import gc, sys
        sys.path.insert(0, TESTS_DIR)
        from flag_server import FlagServer, wait_until
        from ferroflag import FlagEvaluator, FlagSyncClient
        with FlagServer([{"key": "alpha", "enabled": True}], '"v1"') as server:
            evaluator = FlagEvaluator()
            assert FlagSyncClient(evaluator, server.url, interval=0.05).start(wait=5)
            gc.collect()
            server.set_document([{"key": "beta", "enabled": True}], '"v2"')
            wait_until(lambda: "beta" in evaluator, what="the change")
        print("ok")
        """
    ).replace("TESTS_DIR", repr(str(Path(__file__).parent)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_start_async_in_a_uvicorn_lifespan(server, tmp_path):
    pytest.importorskip("uvicorn")
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            from ferroflag import EvalContext, FlagEvaluator, FlagSyncClient

            flags = FlagEvaluator()
            client = FlagSyncClient(flags, {server.url!r}, interval=0.05)

            async def app(scope, receive, send):
                if scope["type"] == "lifespan":
                    while True:
                        message = await receive()
                        if message["type"] == "lifespan.startup":
                            ready = await client.start_async(wait=5)
                            await send({{"type": "lifespan.startup.complete" if ready else "lifespan.startup.failed"}})
                        elif message["type"] == "lifespan.shutdown":
                            print("stopped:", client.stop(), file=sys.stderr, flush=True)
                            await send({{"type": "lifespan.shutdown.complete"}})
                            return
                status = client.status()
                body = json.dumps({{"alpha": flags.is_enabled("alpha", EvalContext("u")), "running": status.running}})
                await send({{"type": "http.response.start", "status": 200, "headers": []}})
                await send({{"type": "http.response.body", "body": body.encode()}})
            """
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--lifespan", "on", "--log-level", "warning"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def get():
            if process.poll() is not None:
                raise AssertionError(f"uvicorn exited with {process.returncode}: {process.stderr.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    return json.loads(response.read())
            except OSError:
                return None

        assert wait_until(get, timeout=15, what="uvicorn") == {"alpha": True, "running": True}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it.
    assert process.returncode in (0, -signal.SIGTERM), (process.returncode, stderr)
    assert stderr == "stopped: True\n", stderr


def test_waits_return_at_once_when_not_running_and_are_interruptible(make_client):
    client = make_client(FlagEvaluator(), f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    assert client.wait_ready(1e308) is False, "never started: nothing will come"
    assert time.monotonic() - started < 0.1

    # A long wait on a running client: a signal handler that raises cuts it short.
    def alarm(*_):
        raise TimeoutError("alarm")

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="alarm"):
            client.start(wait=float("inf"))
        assert time.monotonic() - started < 1.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert client.status().running, "the interrupted wait leaves the client polling"
    client.stop()
    started = time.monotonic()
    assert client.wait_ready(1e308) is False
    assert time.monotonic() - started < 0.1


FORMAT2 = {
    "format": 2,
    "metadata": {"version": "2"},
    "segments": [
        {
            "key": "staff",
            "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@x.test"]}]}],
        }
    ],
    "flags": [
        {"key": "parent", "enabled": True},
        {
            "key": "limits",
            "enabled": True,
            "prerequisites": [{"key": "parent"}],
            "bucket_by": "org_id",
            "rules": [{"conditions": [{"operator": "in_segment", "values": ["staff"]}], "variant": "big"}],
            "off_variant": "small",
            "values": {"big": {"rows": 5000}, "small": {"rows": 100}},
        },
    ],
}


def test_a_format_2_document_arrives_whole_through_the_sync_client(server, make_client):
    server.set_document(FORMAT2, '"f2"')
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url)
    assert client.start(wait=5)
    staff = EvalContext("u", email="a@x.test", properties={"org_id": "acme", "groups": ["a", "b"]})
    assert evaluator.get_value("limits", staff) == {"rows": 5000}
    assert evaluator.evaluate("limits", EvalContext("u")).reason == "no_match"
    assert evaluator.get_value("limits", EvalContext("u")) == {"rows": 100}
    assert evaluator.metadata == {"version": "2"}
    assert [s.key for s in evaluator.segments()] == ["staff"]
    assert evaluator.warnings == []
    # A newer format is refused whole; the last good document keeps answering.
    server.set_document({**FORMAT2, "format": 3}, '"f3"')
    wait_until(lambda: client.status().failures >= 1, what="the rejected format-3 document")
    assert "format 3 is newer" in (client.status().last_error or "")
    assert evaluator.get_value("limits", staff) == {"rows": 5000}


# ---------------------------------------------------------------------------------------------------
# Issue 17: start-up with a cache, truthful status, bounded and secret-free texts


def test_a_valid_cache_is_served_at_once_while_the_service_never_answers(make_client, tmp_path, log):
    cache = tmp_path / "flags-cache.json"
    with FlagServer(DOC2, '"v2"') as server:
        _, writer = cache_client(make_client, server.url, cache)
        assert writer.start(wait=5)
        wait_until(cache.exists, what="the cache file")
        writer.stop()
        server.always(hang())
        evaluator = FlagEvaluator()
        client = make_client(evaluator, server.url, cache_path=cache, timeout=5.0)
        assert client.start(wait=5.0) is True
        status = client.status()
        # Served before the first request has any answer: nothing has failed yet.
        assert (status.source, status.failures, status.successes) == ("cache", 0, 0)
        assert evaluator.is_enabled("beta", CTX)
        assert status.document_id == writer.status().document_id
        client.stop()


def test_texts_never_hold_a_surrogate_value_or_a_slashed_password(make_client):
    evaluator = FlagEvaluator()
    cases = [
        ({"api_url": "http://127.0.0.1:1", "headers": {"X-Key": "Bearer \udcffs3cr3t"}}, "not valid text"),
        ({"api_url": "http://user:pa55word\udcff@127.0.0.1:1"}, "not valid text"),
        ({"api_url": "http://user:pa55word/x@127.0.0.1:1/flags"}, "percent-encode"),
        ({"api_url": "http://u:p/querysecret@127.0.0.1:1/flags", "path": ""}, "percent-encode"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match) as error:
            FlagSyncClient(evaluator, kwargs.pop("api_url"), **kwargs)
        chained = [error.value, error.value.__cause__, error.value.__context__]
        assert_no_secret(*chained, *error.value.args)
        assert not any(isinstance(e, UnicodeError) for e in chained), chained
    client = make_client(evaluator, "http://user:a%2Fpa55word@127.0.0.1:1/flags", path="")
    assert_no_secret(repr(client), client.url)


def test_the_document_id_is_the_same_in_every_worker(server, make_client):
    first, second = FlagEvaluator(), FlagEvaluator()
    second.update([{"key": "other", "enabled": True}])
    a, b = make_client(first, server.url), make_client(second, server.url)
    assert a.start(wait=5)
    assert b.start(wait=5)
    sa, sb = a.status(), b.status()
    assert sa.snapshot_version != sb.snapshot_version
    assert sa.document_id == sb.document_id
    assert len(sa.document_id) == 16
    assert int(sa.document_id, 16) >= 0
    assert sa.to_dict()["document_id"] == sa.document_id
    assert f"document_id='{sa.document_id}'" in repr(sa)
    assert FlagSyncClient(FlagEvaluator(), server.url).status().document_id is None


@pytest.mark.slow
def test_failure_and_next_attempt_are_one_update_under_load(server, make_client):
    """#14: readers hammering `status()` never see a failure with the previous attempt's time."""
    evaluator = FlagEvaluator()
    client = make_client(evaluator, server.url, backoff_cap=5.0)
    assert client.start(wait=5)
    for _ in range(3):
        seen: list[float] = []
        done = threading.Event()

        def read(seen: list[float] = seen, done: threading.Event = done) -> None:
            deadline = time.monotonic() + 10
            while not done.is_set() and time.monotonic() < deadline:
                now = time.time()
                status_ = client.status()
                if status_.consecutive_failures == 1 and status_.last_error_at is not None:
                    seen.append(now + (status_.next_attempt_in or 0.0) - status_.last_error_at)

        readers = [threading.Thread(target=read) for _ in range(4)]
        for reader in readers:
            reader.start()
        failures = client.status().failures
        server.script(status(429, ("Retry-After", "1")))
        wait_until(
            lambda f=failures: (s := client.status()).failures > f and s.consecutive_failures == 0, what="the retry"
        )
        done.set()
        for reader in readers:
            reader.join(timeout=10)
        assert seen, "no reader saw the failure"
        # The next attempt is the 429's Retry-After from the failure on: never the previous schedule.
        assert min(seen) > 0.5, sorted(seen)[:5]


@pytest.mark.slow
def test_until_the_first_success_retries_come_at_the_cold_start_cap(make_client):
    client = make_client(
        FlagEvaluator(), f"http://127.0.0.1:{free_port()}", interval=0.02, backoff_cap=60.0, cold_start_cap=0.2
    )
    assert client.start(wait=0) is False
    status_ = wait_until(lambda: (s := client.status()).failures >= 12 and s, timeout=10, what="twelve failures")
    assert status_.next_attempt_in <= 0.25, status_


def test_a_fifo_as_the_flag_file_is_refused(tmp_path):
    path = tmp_path / "flags.json"
    os.mkfifo(path)
    watcher = FlagFileWatcher(FlagEvaluator(), path, interval=0.02)
    try:
        assert watcher.start(wait=0.2) is False
        status_ = wait_until(lambda: (s := watcher.status()).failures >= 1 and s, what="the refusal")
        assert "not a regular file" in status_.last_error
        assert status_.running
        assert not status_.ready
    finally:
        assert watcher.stop() is True
