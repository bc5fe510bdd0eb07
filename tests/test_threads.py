"""Readers on real threads while a writer publishes: every answer comes from one whole snapshot, and
no reader ever goes back to an older one (docs/spec.md §6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable

import pytest
from ferroflag import EvalContext, FlagEvaluator

UPDATES = 1_000
KEYS = ("a", "b", "c")
READER_LIMIT = 1_000_000  # a bound on every reader loop, in case the writer dies early


def snapshot(n: int) -> list[dict]:
    """Update `n`: three flags whose answers all carry `v{n}`, so a reader can tell where an answer came from."""
    return [
        {"key": "a", "enabled": True, "default_variant": f"v{n}"},
        {"key": "b", "enabled": True, "rules": [{"conditions": [], "variant": f"v{n}"}]},
        {"key": "c", "enabled": True, "percentage": 100, "variants": {f"v{n}": 1}},
    ]


def number(variant: str) -> int:
    assert variant.startswith("v"), variant
    return int(variant[1:])


def publish_numbered(evaluator: FlagEvaluator) -> None:
    for n in range(1, UPDATES + 1):
        if n % 2:
            evaluator.update(snapshot(n))
        else:
            evaluator.update_json(json.dumps(snapshot(n)))
        time.sleep(0)  # let readers in between updates, even with a GIL


def publish_flips(evaluator: FlagEvaluator) -> None:
    for n in range(1, UPDATES + 1):
        evaluator.update([{"key": "flip", "enabled": bool(n % 2)}])
        time.sleep(0)


class Run:
    """One writer and several readers on real threads, started together. Readers loop until the
    writer is done (`running(i)`); each gets a set to record what it saw."""

    def __init__(self, write: Callable[[], None], readers: list[Callable[[Run, set[int]], None]]) -> None:
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.seen: list[set[int]] = [set() for _ in readers]
        self.start = threading.Barrier(len(readers) + 1)
        self.threads = [threading.Thread(target=self._guard, args=(write, True))] + [
            threading.Thread(target=self._guard, args=(lambda r=reader, s=seen: r(self, s), False))
            for reader, seen in zip(readers, self.seen, strict=True)
        ]

    def _guard(self, target: Callable[[], None], is_writer: bool) -> None:
        try:
            self.start.wait(timeout=30)
            target()
        except BaseException as error:  # re-raised by run(), on the test's thread
            self.errors.append(error)
        finally:
            if is_writer or self.errors:
                self.done.set()

    def running(self, iteration: int) -> bool:
        return not self.done.is_set() and iteration < READER_LIMIT

    def run(self) -> None:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in self.threads), "a thread did not finish"
        if self.errors:
            raise self.errors[0]
        assert all(self.seen), "a reader saw nothing"


@pytest.fixture(autouse=True)
def quick_thread_switches():
    """With a GIL, hand it over more often than every 5 ms, so 1,000 updates interleave with the
    readers without the test taking many seconds."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_readers_only_see_whole_snapshots_in_order():
    evaluator = FlagEvaluator(snapshot(0))
    ctx = EvalContext("user-1")

    def read_all(run: Run, seen: set[int]) -> None:
        last, i = 0, 0
        while run.running(i):
            results = evaluator.evaluate_all(ctx)
            assert list(results) == list(KEYS)
            numbers = {number(r.variant) for r in results.values()}
            assert len(numbers) == 1, results  # all three flags from one snapshot
            [n] = numbers
            assert n >= last, (n, last)  # never back to an older snapshot
            assert [r.reason for r in results.values()] == ["default", "rule_match", "default"]
            seen.add(n)
            last, i = n, i + 1

    def read_one_by_one(run: Run, seen: set[int]) -> None:
        last, i = 0, 0
        while run.running(i):
            # Separate calls may straddle an update, but each answer is as new as the one before, or newer.
            for key in KEYS:
                result = evaluator.evaluate(key, ctx)
                assert result.enabled, result
                n = number(result.variant)
                assert n >= last, (key, n, last)
                last = n
                seen.add(n)
            assert evaluator.is_enabled("a", ctx) is True
            i += 1

    run = Run(lambda: publish_numbered(evaluator), [read_all, read_all, read_one_by_one, read_one_by_one])
    run.run()
    assert evaluator.version == UPDATES + 1
    assert len(set().union(*run.seen)) > 1, "the readers never saw an update: nothing concurrent was tested"
    assert {r.variant for r in evaluator.evaluate_all(ctx).values()} == {f"v{UPDATES}"}


@pytest.mark.timeout(120)
def test_a_batch_is_answered_from_one_snapshot():
    evaluator = FlagEvaluator([{"key": "flip", "enabled": False}])
    contexts = [EvalContext(f"user-{i}") for i in range(200)] + [{"user_id": f"dict-{i}"} for i in range(50)]

    def read_batches(run: Run, seen: set[int]) -> None:
        i = 0
        while run.running(i):
            answers = evaluator.is_enabled_many("flip", contexts)
            assert len(answers) == len(contexts)
            assert len(set(answers)) == 1, "one batch mixed two snapshots"
            seen.add(int(answers[0]))
            i += 1

    def read_versions(run: Run, seen: set[int]) -> None:
        last, i = 0, 0
        while run.running(i):
            version = evaluator.version
            assert version >= last, (version, last)
            seen.add(version)
            last, i = version, i + 1

    run = Run(lambda: publish_flips(evaluator), [read_batches, read_batches, read_versions])
    run.run()
    assert evaluator.version == UPDATES + 1
    assert evaluator.is_enabled("flip", EvalContext("u")) is False  # the last update (even) disables it


def test_module_declares_free_threading_support():
    # Only a free-threaded interpreter can tell: on a GIL build the GIL is on before and after any import. The
    # release workflow runs this file on free-threaded CPython with FERROFLAG_REQUIRE_FREE_THREADING=1, where a
    # skip would hide that the build under test is not free-threaded after all.
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        if os.environ.get("FERROFLAG_REQUIRE_FREE_THREADING"):
            pytest.fail(f"FERROFLAG_REQUIRE_FREE_THREADING is set but {sys.version} is not a free-threaded build")
        pytest.skip("needs a free-threaded CPython (3.13t or later); the release workflow runs it on one")
    # In a fresh interpreter: on a free-threaded build, importing a module that does not declare
    # free-threading support turns the GIL back on (with a RuntimeWarning); on a GIL build nothing changes.
    code = "import sys; before = sys._is_gil_enabled(); import ferroflag; print(before, sys._is_gil_enabled(), sep=',')"
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    before, after = out.stdout.strip().split(",")
    assert after == before
