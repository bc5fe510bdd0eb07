"""Exposure events (docs/spec.md §8, "Exposures"): tracked flags only, deduplicated, bounded, never
waiting for the sink, one queue and thread per process, flushed at exit."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from ferroflag import EvalContext, FlagEvaluator, exposures
from ferroflag.exposures import Exposure

TRACKED = {"key": "exp", "enabled": True, "variants": {"a": 1, "b": 1}, "metadata": {"track": True}}
PLAIN = {"key": "plain", "enabled": True, "variants": {"a": 1, "b": 1}}
BY_ORG = {"key": "org-exp", "enabled": True, "bucket_by": "org", "variants": {"x": 1}, "metadata": {"track": True}}


@pytest.fixture(autouse=True)
def _close_streams():
    """Each test's exposure threads end with it (other tests count the ferroflag threads alive)."""
    yield
    exposures._close_all()


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def evaluator_with_sink(**sizes):
    evaluator = FlagEvaluator([TRACKED, PLAIN, BY_ORG])
    got: list[Exposure] = []
    lock = threading.Lock()

    def sink(batch: list[Exposure]) -> None:
        with lock:
            got.extend(batch)

    stream = evaluator.on_exposure(sink, interval=0.02, **sizes)
    return evaluator, stream, got


def test_only_tracked_flags_are_exposures_and_every_call_counts():
    evaluator, stream, got = evaluator_with_sink()
    ctx = EvalContext("ana", properties={"org": "org-5"})
    evaluator.is_enabled("plain", ctx)
    evaluator.evaluate("plain", ctx)
    assert stream.flush() == 0
    answer = evaluator.evaluate("exp", ctx)
    evaluator.is_enabled("org-exp", ctx)
    stream.flush()
    assert [(e.flag, e.variant, e.reason, e.subject, e.snapshot) for e in got] == [
        ("exp", answer.variant, "default", "ana", 1),
        ("org-exp", "x", "default", "org-5", 1),  # the subject is the flag's bucketing value
    ]
    assert abs(got[0].timestamp - time.time()) < 60
    # get_value, get_variant, evaluate_all and is_enabled_many are answers too.
    for i, call in enumerate(
        (
            lambda c: evaluator.get_value("exp", c),
            lambda c: evaluator.get_variant("exp", c),
            lambda c: evaluator.evaluate_all(c),
            lambda c: evaluator.is_enabled_many("exp", [c]),
        )
    ):
        call(EvalContext(f"user-{i}"))
    stream.flush()
    assert sorted(e.subject for e in got if e.flag == "exp")[1:] == ["user-0", "user-1", "user-2", "user-3"]


def test_repeated_answers_are_one_exposure_until_the_flags_change():
    evaluator, stream, got = evaluator_with_sink()
    ctx = EvalContext("ana")
    for _ in range(1000):
        evaluator.is_enabled("exp", ctx)
    stream.flush()
    assert len(got) == 1
    assert stream.stats().deduplicated == 999
    evaluator.update([TRACKED, PLAIN, BY_ORG])  # a new snapshot: the same answer is exposed again
    evaluator.is_enabled("exp", ctx)
    stream.flush()
    assert [e.snapshot for e in got] == [1, 2]


def test_a_full_queue_drops_and_counts_without_waiting():
    blocked = threading.Event()
    release = threading.Event()

    def slow_sink(batch):
        blocked.set()
        release.wait(10)

    evaluator2 = FlagEvaluator([TRACKED])
    stream2 = evaluator2.on_exposure(slow_sink, capacity=50, batch_size=10, interval=0.01)
    evaluator2.is_enabled("exp", EvalContext("first"))
    assert wait_for(blocked.is_set)  # the sink thread is stuck in the sink
    started = time.perf_counter()
    for i in range(1000):
        evaluator2.is_enabled("exp", EvalContext(f"u{i}"))
    took = time.perf_counter() - started
    stats = stream2.stats()
    assert stats.recorded + stats.dropped == 1001
    assert stats.dropped >= 1000 - 50
    assert took < 5, "evaluation waited for the sink"
    release.set()
    stream2.close()
    assert stream2.stats().queued == 0


def test_a_sink_that_raises_is_logged_and_keeps_receiving(caplog):
    evaluator = FlagEvaluator([TRACKED])
    calls: list[int] = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("analytics is down")

    stream = evaluator.on_exposure(flaky, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="ferroflag"):
        evaluator.is_enabled("exp", EvalContext("a"))
        assert wait_for(lambda: len(calls) == 1)
        evaluator.is_enabled("exp", EvalContext("b"))
        assert wait_for(lambda: len(calls) == 2)
    assert stream.stats().sink_errors == 1
    assert any("exposure sink raised" in r.getMessage() for r in caplog.records)
    assert "analytics is down" in caplog.text


def test_a_second_sink_shares_the_stream():
    evaluator, stream, got = evaluator_with_sink()
    more: list[Exposure] = []
    assert evaluator.on_exposure(more.extend) is stream
    evaluator.is_enabled("exp", EvalContext("ana"))
    stream.flush()
    assert len(got) == len(more) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"batch_size": 0}, ValueError),
        ({"capacity": "10"}, TypeError),
        ({"interval": 0}, ValueError),
        ({"window": 1.5}, TypeError),
    ],
)
def test_bad_sizes_are_clear_errors(kwargs, error):
    with pytest.raises(error):
        FlagEvaluator().on_exposure(lambda batch: None, **kwargs)


def test_a_sink_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        FlagEvaluator().on_exposure("print")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_has_its_own_queue_and_thread(tmp_path: Path):
    evaluator = FlagEvaluator([TRACKED])
    parent_got: list[Exposure] = []
    stream = evaluator.on_exposure(parent_got.extend, interval=0.01)
    evaluator.is_enabled("exp", EvalContext("before-fork"))
    stream.flush()
    out = tmp_path / "child.json"
    child_got: list[Exposure] = []
    stream.add_sink(child_got.extend)  # in the parent too, but only the child writes the file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child_got.clear()
            evaluator.is_enabled("exp", EvalContext("before-fork"))  # not a duplicate here: a new window
            evaluator.is_enabled("exp", EvalContext("in-child"))
            delivered = wait_for(lambda: len(child_got) == 2, timeout=10)
            threads = [t.name for t in threading.enumerate()]
            out.write_text(
                json.dumps({"delivered": delivered, "subjects": [e.subject for e in child_got], "threads": threads})
            )
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    report = json.loads(out.read_text())
    assert report["delivered"], report
    assert sorted(report["subjects"]) == ["before-fork", "in-child"]
    assert "ferroflag-exposures" in report["threads"]
    # The parent's stream goes on, and saw none of the child's exposures.
    evaluator.is_enabled("exp", EvalContext("after-fork"))
    stream.flush()
    assert [e.subject for e in parent_got] == ["before-fork", "after-fork"]


def test_exposures_waiting_at_exit_reach_the_sink(tmp_path: Path):
    out = tmp_path / "exposures.jsonl"
    code = f"""
import json
from ferroflag import EvalContext, FlagEvaluator
ev = FlagEvaluator([{json.dumps(TRACKED)!s}.copy()])
def sink(batch):
    with open({str(out)!r}, "a") as f:
        for e in batch:
            f.write(json.dumps(e._asdict()) + "\\n")
ev.on_exposure(sink, interval=3600, batch_size=10_000)  # nothing is delivered before exit
for i in range(250):
    ev.is_enabled("exp", EvalContext(f"u{{i}}"))
"""
    code = code.replace("true", "True")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lines = out.read_text().splitlines()
    assert len(lines) == 250
    assert {json.loads(line)["flag"] for line in lines} == {"exp"}
