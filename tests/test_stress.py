"""Load: 8 threads evaluating while 1 thread updates and a sync client swaps in snapshots from a
loopback flag server, all on one evaluator, for a bounded time (docs/spec.md §6: readers never see half an
update).

Every snapshot is tagged: its flags' variants all carry `u{n}` (the updater's n-th update) or
`s{n}` (the server's n-th document), and the set of flag keys differs from one snapshot to the
next. A reader then checks that each `evaluate_all` holds one tag and exactly that snapshot's keys
(a torn read would mix two), and that neither source's numbers nor `version` ever go backwards for
it. `run()` is also what `benches/reliability.py` calls for its table.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from ferroflag import EvalContext, FlagEvaluator, FlagSyncClient
from flag_server import FlagServer, wait_until

READERS = 8
SECONDS = float(os.environ.get("FERROFLAG_STRESS_SECONDS", "3"))
CONTEXTS = [EvalContext(f"user-{i}", plan="enterprise" if i % 3 == 0 else "free") for i in range(64)]


def document(tag: str) -> list[dict[str, Any]]:
    """A snapshot whose every enabled answer carries `tag`, with keys that depend on it."""
    n = int(tag[1:])
    return [
        {"key": "a", "enabled": True, "default_variant": tag},
        {"key": "b", "enabled": True, "rules": [{"conditions": [], "variant": tag}]},
        {"key": "c", "enabled": True, "percentage": 100, "variants": {tag: 1}},
        {"key": "d", "enabled": True, "percentage": 50, "variants": {f"{tag}-x": 1, f"{tag}-y": 1}},
        {
            "key": "e",
            "enabled": True,
            "rules": [
                {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["enterprise"]}], "variant": tag}
            ],
            "default_variant": tag,
        },
        {"key": f"extra-{tag[0]}{n % 7}", "enabled": True, "default_variant": tag},
    ]


def expected_keys(tag: str) -> list[str]:
    return ["a", "b", "c", "d", "e", f"extra-{tag[0]}{int(tag[1:]) % 7}"]


@dataclass
class Stats:
    evaluations: int = 0
    torn: int = 0
    backwards: int = 0
    updates: int = 0
    server_documents: int = 0
    sync_swaps: int = 0
    errors: list[str] = field(default_factory=list)


def tag_of(variant: str) -> str:
    return variant.split("-", 1)[0]


def check_all(results: dict[str, Any]) -> str | None:
    """The one tag of an `evaluate_all` answer, or None when it mixes snapshots."""
    tags = {tag_of(r.variant) for r in results.values() if r.enabled}
    if len(tags) != 1:
        return None
    (tag,) = tags
    if list(results) != expected_keys(tag) or not results["a"].enabled:
        return None
    return tag


def reader(evaluator: FlagEvaluator, stop: threading.Event, stats: Stats, lock: threading.Lock) -> None:
    evaluations = torn = backwards = 0
    latest = {"u": 0, "s": 0}
    version = 0
    i = 0
    try:
        while not stop.is_set() and i < 50_000_000:
            ctx = CONTEXTS[i % len(CONTEXTS)]
            i += 1
            seen_version = evaluator.version
            if seen_version < version:
                backwards += 1
            version = seen_version
            results = evaluator.evaluate_all(ctx)
            evaluations += len(results)
            tag = check_all(results)
            if tag is None:
                torn += 1
                continue
            source, n = tag[0], int(tag[1:])
            if n < latest[source]:
                backwards += 1
            latest[source] = n
            # Single evaluations: whole answers, never older than what this reader already saw.
            for key in ("a", "d", "e"):
                result = evaluator.evaluate(key, ctx)
                evaluations += 1
                if result.enabled:
                    single = tag_of(result.variant)
                    if single[0] == source and int(single[1:]) < n:
                        backwards += 1
            evaluations += len(evaluator.is_enabled_many("a", CONTEXTS[:8]))
    except BaseException as error:  # reported by the test's thread
        with lock:
            stats.errors.append(repr(error))
    with lock:
        stats.evaluations += evaluations
        stats.torn += torn
        stats.backwards += backwards


def updater(evaluator: FlagEvaluator, stop: threading.Event, stats: Stats) -> None:
    n = 0
    while not stop.is_set() and n < 10_000_000:
        n += 1
        if n % 2:
            evaluator.update(document(f"u{n}"))
        else:
            evaluator.update_json(json.dumps(document(f"u{n}")))
        time.sleep(0.0005)
    stats.updates = n


def feeder(server: FlagServer, stop: threading.Event, stats: Stats) -> None:
    """Changes the flag service's document every few milliseconds; the client polls it."""
    n = 1
    while not stop.wait(0.005) and n < 10_000_000:
        n += 1
        server.set_document(document(f"s{n}"), f'"s{n}"')
    stats.server_documents = n


def run(seconds: float = SECONDS, readers: int = READERS) -> Stats:
    """The whole stress run; returns what it counted. Bounded by `seconds` plus start-up."""
    stats, lock, stop = Stats(), threading.Lock(), threading.Event()
    evaluator = FlagEvaluator(document("u0"))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # more interleavings between the Python threads
    with FlagServer(document("s1"), '"s1"') as server:
        client = FlagSyncClient(evaluator, server.url, interval=0.005, timeout=2.0)
        try:
            assert client.start(wait=5.0), client.status()
            threads = [threading.Thread(target=reader, args=(evaluator, stop, stats, lock)) for _ in range(readers)]
            threads += [
                threading.Thread(target=updater, args=(evaluator, stop, stats)),
                threading.Thread(target=feeder, args=(server, stop, stats)),
            ]
            for thread in threads:
                thread.start()
            stop.wait(seconds)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
                assert not thread.is_alive()
            stats.sync_swaps = client.status().successes
        finally:
            sys.setswitchinterval(switch)
            client.stop()
    return stats


@pytest.mark.slow
def test_every_answer_comes_from_one_whole_snapshot():
    stats = run()
    assert stats.errors == []
    assert stats.torn == 0
    assert stats.backwards == 0
    assert stats.evaluations > 10_000
    assert stats.updates > 10
    # The sync client really swapped snapshots in during the run, beside the updater.
    assert stats.sync_swaps > 5, stats


def test_the_sync_client_wins_after_the_updater_stops():
    """Once the updater is quiet, the next document from the service replaces its snapshot."""
    evaluator = FlagEvaluator(document("u1"))
    with FlagServer(document("s1"), '"s1"') as server, FlagSyncClient(evaluator, server.url, interval=0.01):
        evaluator.update(document("u2"))
        server.set_document(document("s2"), '"s2"')
        wait_until(lambda: evaluator.get_variant("a", CONTEXTS[0]) == "s2", what="the service's document")
        assert check_all(evaluator.evaluate_all(CONTEXTS[0])) == "s2"


def test_the_checker_sees_a_torn_read():
    """The check above would notice a mix: half of one snapshot's answers and half of another's."""
    ctx = CONTEXTS[0]
    old, new = FlagEvaluator(document("u1")).evaluate_all(ctx), FlagEvaluator(document("u2")).evaluate_all(ctx)
    assert check_all(old) == "u1"
    assert check_all(new) == "u2"
    assert check_all({**old, "b": new["b"]}) is None
    assert check_all({k: v for k, v in old.items() if k != "c"}) is None
    assert (
        check_all({**{k: v for k, v in old.items() if not k.startswith("extra")}, "extra-u2": new["extra-u2"]}) is None
    )
