"""Counters and Prometheus metrics (docs/spec.md §8): counted natively, read at scrape time."""

from __future__ import annotations

import os
import time
import warnings

import pytest
from ferroflag import EvalContext, FlagEvaluator, FlagFileWatcher, exposures, metrics
from prometheus_client import CollectorRegistry, generate_latest

FLAGS = [
    {"key": "exp", "enabled": True, "variants": {"a": 1, "b": 1}, "metadata": {"track": True}},
    {
        "key": "gate",
        "enabled": True,
        "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}]}],
    },
    {"key": "off", "enabled": False},
]


@pytest.fixture(autouse=True)
def _close_streams():
    """Each test's exposure threads end with it (other tests count the ferroflag threads alive)."""
    yield
    exposures._close_all()


def test_counters_are_off_until_enabled_then_count_every_call():
    evaluator = FlagEvaluator(FLAGS)
    evaluator.is_enabled("gate", EvalContext("u"))
    assert evaluator.counters() == {}
    evaluator.enable_counters()
    evaluator.enable_counters()  # idempotent
    for i in range(10):
        evaluator.is_enabled("gate", EvalContext(f"u{i}", plan="pro" if i < 3 else "free"))
    evaluator.evaluate("off", EvalContext("u"))
    evaluator.get_value("exp", EvalContext("u"))
    evaluator.evaluate_all(EvalContext("u"))
    evaluator.is_enabled_many("gate", [EvalContext("x", plan="pro")] * 5)
    counts = evaluator.counters()
    assert counts[("gate", "", "rule_match")] == 3 + 5
    assert counts[("gate", "", "no_match")] == 7 + 1
    assert counts[("off", "", "disabled")] == 2
    assert sum(n for (flag, _, _), n in counts.items() if flag == "exp") == 2
    assert evaluator.is_enabled("missing", EvalContext("u")) is False
    assert not any(flag == "missing" for flag, _, _ in evaluator.counters())


def test_counts_survive_a_flag_change_and_merge_by_name():
    evaluator = FlagEvaluator(FLAGS)
    evaluator.enable_counters()
    evaluator.is_enabled("off", EvalContext("u"))
    evaluator.update(FLAGS)
    evaluator.is_enabled("off", EvalContext("u"))
    assert evaluator.counters() == {("off", "", "disabled"): 2}


def test_a_scrape_shows_evaluations_exposures_and_the_source(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text('{"format": 2, "flags": [{"key": "exp", "enabled": true, "metadata": {"track": true}}]}')
    evaluator = FlagEvaluator()
    registry = CollectorRegistry()
    with FlagFileWatcher(evaluator, path, interval=0.05) as watcher:
        metrics.register(evaluator, watcher, registry=registry)
        stream = evaluator.on_exposure(lambda batch: None)
        for _ in range(4):
            evaluator.is_enabled("exp", EvalContext("ana"))
        stream.flush()
        text = generate_latest(registry).decode()
    assert 'ferroflag_evaluations_total{flag="exp",reason="default",variant=""} 4.0' in text
    assert 'ferroflag_exposures_total{outcome="recorded"} 1.0' in text
    assert 'ferroflag_exposures_total{outcome="deduplicated"} 3.0' in text
    assert "ferroflag_flags 1.0" in text
    assert 'ferroflag_source_ready{source="file"} 1.0' in text
    assert 'ferroflag_source_failures_total{source="file"} 0.0' in text
    age = next(line for line in text.splitlines() if line.startswith("ferroflag_snapshot_age_seconds"))
    assert 0 <= float(age.split()[-1]) < 60


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_counts_its_own_evaluations():
    evaluator = FlagEvaluator(FLAGS)
    evaluator.enable_counters()
    evaluator.is_enabled("off", EvalContext("parent"))
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            evaluator.is_enabled("off", EvalContext("child"))
            os.write(write_end, repr(evaluator.counters()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 20
    _, status = os.waitpid(pid, 0)
    assert time.monotonic() < deadline
    assert os.waitstatus_to_exitcode(status) == 0
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == repr({("off", "", "disabled"): 1})
    assert evaluator.counters() == {("off", "", "disabled"): 1}
