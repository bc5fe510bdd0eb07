"""Fork safety: a forked child keeps syncing without user code, and the parent never notices.

Each child reports through a pipe and leaves with `os._exit`, so it never runs pytest's teardown;
the parent waits for it with a deadline and kills it if it overruns. All traffic stays on 127.0.0.1.

Python 3.12+ warns (DeprecationWarning) when a process with other threads forks: the sync thread
and the test server's threads are such threads, and forking them away is exactly what is under
test here, so the tests that fork ignore that warning.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from ferroflag import EvalContext, FlagEvaluator, FlagSyncClient
from flag_server import FlagServer, wait_until

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Forking while the sync thread runs is the point of these tests (see the module docs).
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

INTERVAL = 0.2
DOC1 = [{"key": "alpha", "enabled": True}]
DOC2 = [{"key": "alpha", "enabled": True}, {"key": "beta", "enabled": True}]
DOC3 = [{"key": "gamma", "enabled": True}]
CTX = EvalContext("user-1")
CHILD_DEADLINE = 20.0


@pytest.fixture
def synced():
    """A server serving DOC1 and a started client whose evaluator has it."""
    with FlagServer(DOC1, '"v1"') as server:
        evaluator = FlagEvaluator()
        client = FlagSyncClient(evaluator, server.url, interval=INTERVAL, timeout=2.0, backoff_cap=0.5)
        assert client.start(wait=5)
        yield server, evaluator, client
        client.stop()


def spawn(child: Callable[[int, int], dict], fork: Callable[[], int] = os.fork) -> tuple[int, int, int]:
    """Forks; the child runs `child(read_fd, write_fd)` and its result goes back as one JSON line.
    Returns the pid, the parent's end to read the report from, and its end to send the child a line."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(to_child_w)
            os.close(to_parent_r)
            report = child(to_child_r, to_parent_w)
            os.write(to_parent_w, (json.dumps(report) + "\n").encode())
            code = 0
        except BaseException as error:
            os.write(to_parent_w, (json.dumps({"error": repr(error)}) + "\n").encode())
        finally:
            os._exit(code)
    os.close(to_child_r)
    os.close(to_parent_w)
    return pid, to_parent_r, to_child_w


def read_line(fd: int, timeout: float = CHILD_DEADLINE) -> dict:
    deadline = time.monotonic() + timeout
    data = b""
    os.set_blocking(fd, False)
    while not data.endswith(b"\n"):
        if time.monotonic() > deadline:
            raise AssertionError(f"no report from the child within {timeout} s")
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not chunk:
            raise AssertionError(f"the child closed its pipe without a report: {data!r}")
        data += chunk
    report = json.loads(data)
    assert "error" not in report, report["error"]
    return report


def child_wait_line(fd: int) -> None:
    """In the child: block until the parent writes a line (bounded by the parent's deadline)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            raise RuntimeError("the parent closed the pipe")
        data += chunk


def reap(pid: int, timeout: float = CHILD_DEADLINE) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} did not finish within {timeout} s (deadlocked?)")


def sees_change_made_after_the_fork(evaluator: FlagEvaluator, poke: Callable[[], None] | None = None):
    """The child's side: report that it serves the inherited flags, wait for the parent to change
    the document, then time how long until the change arrives. Only evaluates, unless `poke`."""

    def child(read_fd: int, write_fd: int) -> dict:
        inherited = evaluator.is_enabled("alpha", CTX)
        if poke is not None:
            poke()
        os.write(write_fd, b'{"inherited": %s}\n' % (b"true" if inherited else b"false"))
        child_wait_line(read_fd)
        changed_at = time.monotonic()
        while "beta" not in evaluator:
            if time.monotonic() - changed_at > 10:
                raise TimeoutError("the change never arrived in the child")
            time.sleep(0.005)
        return {"seen_after": time.monotonic() - changed_at, "pid": os.getpid()}

    return child


def run_change_after_fork(server, evaluator, client, fork=os.fork, poke=None) -> dict:
    pid, report_fd, command_fd = spawn(sees_change_made_after_the_fork(evaluator, poke), fork)
    try:
        assert read_line(report_fd) == {"inherited": True}, "the child serves the inherited flags"
        server.set_document(DOC2, '"v2"')
        os.write(command_fd, b"changed\n")
        report = read_line(report_fd)
    finally:
        code = reap(pid)
        os.close(report_fd)
        os.close(command_fd)
    assert code == 0
    assert report["pid"] == pid
    return report


def test_forked_child_picks_up_a_change_made_after_the_fork(synced):
    server, evaluator, client = synced
    report = run_change_after_fork(server, evaluator, client)
    # The child only evaluates: the at-fork hook restarted its poller. Two intervals, plus slack
    # for a loaded machine.
    assert report["seen_after"] <= 2 * INTERVAL + 0.3, report


def test_parent_keeps_syncing_after_the_child_exits(synced):
    server, evaluator, client = synced
    run_change_after_fork(server, evaluator, client)
    # The parent also got DOC2 meanwhile; now a change only the parent can see.
    before = client.status()
    server.set_document(DOC3, '"v3"')
    wait_until(lambda: "gamma" in evaluator, what="the parent's next change")
    after = client.status()
    assert after.running
    assert after.successes == before.successes + 1
    assert after.failures == 0
    assert after.etag == '"v3"'


def test_subprocess_spawn_does_not_disturb_the_parent(synced):
    server, evaluator, client = synced
    before = client.status()
    for _ in range(3):
        subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=30)
    subprocess.run(["true"], check=True, timeout=30, preexec_fn=lambda: None)  # runs the at-fork hooks
    server.set_document(DOC2, '"v2"')
    wait_until(lambda: "beta" in evaluator, what="the change in the parent")
    after = client.status()
    assert after.running
    assert after.failures == 0
    assert after.successes == before.successes + 1


def test_a_c_level_fork_is_caught_on_the_next_call(synced):
    # uWSGI forks its workers from C, where Python's at-fork hooks do not run (unless
    # `py-call-osafterfork` is set). libc's fork() through ctypes.pythonapi (which keeps the GIL)
    # does the same; the first call on the client in the child rebuilds and restarts it.
    server, evaluator, client = synced
    libc_fork = ctypes.PyDLL(None).fork
    libc_fork.restype = ctypes.c_int
    report = run_change_after_fork(server, evaluator, client, fork=libc_fork, poke=client.status)
    assert report["seen_after"] <= 2 * INTERVAL + 0.3, report


def test_no_child_deadlocks_while_the_parent_polls_hard(synced):
    server, evaluator, _ = synced
    # A second client polling every few milliseconds, so that forks land at every point of its loop
    # (in a request, publishing, holding its status lock, logging).
    fast = FlagSyncClient(evaluator, server.url, interval=0.002, backoff_cap=0.01)
    fast.start(wait=5)

    def child(read_fd: int, write_fd: int) -> dict:
        # Ready at once unless the fork caught the status lock held; then after the first poll.
        ready = fast.wait_ready(5)
        return {"enabled": evaluator.is_enabled("alpha", CTX), "ready": ready, "running": fast.status().running}

    try:
        for _ in range(20):
            pid, report_fd, command_fd = spawn(child)
            try:
                report = read_line(report_fd, timeout=10)
            finally:
                code = reap(pid, timeout=10)
                os.close(report_fd)
                os.close(command_fd)
            assert code == 0
            assert report == {"enabled": True, "ready": True, "running": True}
        assert fast.status().running
        assert fast.status().failures == 0
    finally:
        fast.stop()
