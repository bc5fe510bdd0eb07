"""Change listeners (docs/spec.md §8): called after a change from any source, with the keys whose answers may
differ, never for an unchanged document."""

from __future__ import annotations

import json
import os
import threading
import time
import warnings

import pytest
from ferroflag import EvalContext, FlagEvaluator, FlagFileWatcher, changes


@pytest.fixture(autouse=True)
def _close_listeners():
    yield
    changes._close_all()


class Recorder:
    def __init__(self, evaluator: FlagEvaluator) -> None:
        self.calls: list[tuple[frozenset[str], bool]] = []
        self.event = threading.Event()
        self.evaluator = evaluator

    def __call__(self, keys: frozenset[str]) -> None:
        # What the callback sees is already live.
        self.calls.append((keys, self.evaluator.is_enabled("a", EvalContext("u"))))
        self.event.set()

    def next(self, timeout: float = 10.0) -> frozenset[str]:
        assert self.event.wait(timeout), "no change reported"
        self.event.clear()
        return self.calls[-1][0]


SEG = {"key": "beta", "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}]}]}


def document(a: bool = True, segment_plan: str = "pro", extra: bool = False) -> dict:
    seg = {**SEG, "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": [segment_plan]}]}]}
    flags = [
        {"key": "a", "enabled": a},
        {
            "key": "uses-beta",
            "enabled": True,
            "rules": [{"conditions": [{"operator": "in_segment", "values": ["beta"]}]}],
        },
        {"key": "needs-uses-beta", "enabled": True, "prerequisites": [{"key": "uses-beta"}]},
        {"key": "plain", "enabled": True},
    ]
    if extra:
        flags.append({"key": "new", "enabled": True})
    return {"format": 2, "segments": [seg], "flags": flags}


def test_update_reports_exactly_the_flags_whose_answers_may_differ():
    evaluator = FlagEvaluator()
    evaluator.update_json(json.dumps(document()))
    recorder = Recorder(evaluator)
    evaluator.on_change(recorder)
    evaluator.update_json(json.dumps(document(a=False)))
    assert recorder.next() == {"a"}
    assert recorder.calls[-1][1] is False  # the new snapshot was live when the callback ran
    evaluator.update_json(json.dumps(document(a=False, segment_plan="team")))
    assert recorder.next() == {"uses-beta", "needs-uses-beta"}  # through the segment, then the prerequisite
    evaluator.update_json(json.dumps(document(a=False, segment_plan="team", extra=True)))
    assert recorder.next() == {"new"}


def test_an_unchanged_document_calls_nothing():
    evaluator = FlagEvaluator()
    evaluator.update_json(json.dumps(document()))
    recorder = Recorder(evaluator)
    evaluator.on_change(recorder)
    for _ in range(3):
        evaluator.update_json(json.dumps(document()))  # a new snapshot, the same flags
    evaluator.update_json(json.dumps(document(a=False)))  # then a real change, reported alone
    assert recorder.next() == {"a"}
    time.sleep(0.2)
    assert len(recorder.calls) == 1


def test_a_file_watcher_reload_is_reported(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(document()))
    evaluator = FlagEvaluator()
    with FlagFileWatcher(evaluator, path, interval=0.05):
        recorder = Recorder(evaluator)
        evaluator.on_change(recorder)
        tmp = tmp_path / "flags.json.tmp"
        tmp.write_text(json.dumps(document(extra=True)))
        os.replace(tmp, path)
        assert recorder.next() == {"new"}


def test_a_callback_that_raises_is_logged_and_keeps_being_called(caplog):
    evaluator = FlagEvaluator([{"key": "a", "enabled": True}])
    seen: list[frozenset[str]] = []
    done = threading.Event()

    def flaky(keys: frozenset[str]) -> None:
        seen.append(keys)
        if len(seen) == 1:
            raise RuntimeError("cache is down")
        done.set()

    listener = evaluator.on_change(flaky)
    with caplog.at_level("ERROR", logger="ferroflag"):
        evaluator.update([{"key": "a", "enabled": False}])
        deadline = time.monotonic() + 10
        while listener.errors == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        evaluator.update([{"key": "a", "enabled": True}])
        assert done.wait(10)
    assert listener.errors == 1
    assert "cache is down" in caplog.text


def test_a_removed_callback_is_not_called_again():
    evaluator = FlagEvaluator([{"key": "a", "enabled": True}])
    removed = Recorder(evaluator)
    kept = Recorder(evaluator)
    listener = evaluator.on_change(removed)
    assert evaluator.on_change(kept) is listener  # one listener per evaluator
    evaluator.update([{"key": "a", "enabled": False}])
    assert removed.next() == {"a"}
    assert kept.next() == {"a"}
    assert listener.remove(removed) is True
    assert listener.remove(removed) is False  # no longer registered
    evaluator.update([{"key": "a", "enabled": True}])
    assert kept.next() == {"a"}
    assert len(removed.calls) == 1


def test_a_callback_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        FlagEvaluator().on_change(42)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_has_a_listener_of_its_own():
    evaluator = FlagEvaluator([{"key": "a", "enabled": True}])
    reported: list[frozenset[str]] = []
    evaluator.on_change(reported.append)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            evaluator.update([{"key": "a", "enabled": True}, {"key": "child", "enabled": True}])
            deadline = time.monotonic() + 10
            while not reported and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(write_end, json.dumps(sorted(reported[0]) if reported else None).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        assert json.loads(pipe.read()) == ["child"]
    assert os.waitstatus_to_exitcode(status) == 0
    assert reported == []  # the child's change is the child's
