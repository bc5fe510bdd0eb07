"""Hostile input at every public function and constructor of the native module.

Every (target, value) pair is one test: the call must return or raise a clear exception (TypeError,
ValueError, ConfigError, OverflowError, an OSError for paths, or the hostile object's own error),
never crash the process, never raise a Rust panic (`PanicException` is a `BaseException`, so it
escapes the `except` below and fails the test) or a `SystemError`. A call that raises must leave
the shared evaluator's snapshot as it was, and the evaluator must keep answering afterwards.

`benches/reliability.py` counts the cases here for the "hostile inputs tried" line of its table.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ferroflag import (
    Condition,
    ConfigError,
    EvalContext,
    EvalResult,
    FerroflagError,
    FlagConfig,
    FlagEvaluator,
    FlagFileWatcher,
    FlagSyncClient,
    Rule,
)
from flag_server import FlagServer

HUGE = "x" * 10_000_000  # 10 MB, shared: str is immutable


class Boom(Exception):
    """What the hostile objects below raise from their dunder methods."""


def _boom(*_args: object) -> Any:
    raise Boom("hostile dunder")


class Evil:
    """Every conversion hook raises."""

    __str__ = __repr__ = __index__ = __float__ = __int__ = __len__ = __iter__ = __bool__ = _boom
    __eq__ = __hash__ = __fspath__ = __getitem__ = __contains__ = _boom


class EvilStr(str):
    __eq__ = __hash__ = __str__ = __repr__ = __len__ = __iter__ = _boom


class EvilInt(int):
    __str__ = __repr__ = __index__ = __float__ = __eq__ = __hash__ = __format__ = _boom


class EvilFloat(float):
    __str__ = __repr__ = __float__ = __eq__ = __hash__ = __format__ = _boom


class LyingInt(int):
    """Looks like 5 to arithmetic, but prints as something else."""

    def __str__(self) -> str:
        return "not a number"

    __repr__ = __str__


class EvilDict(dict):
    __getitem__ = __iter__ = __len__ = keys = items = values = get = __contains__ = _boom


class LyingLen:
    """Claims a billion items and yields none: a pre-allocation must not trust it."""

    def __len__(self) -> int:
        return 10**9

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class MaxLen(LyingLen):
    def __len__(self) -> int:
        return sys.maxsize


def failing_generator() -> Iterator[Any]:
    yield {"key": "g", "enabled": True}
    raise Boom("generator failed half-way")


def recursive_list() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


def recursive_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"key": "r", "enabled": True}
    d["rules"] = [d]
    d["self"] = d
    return d


def deep_list(depth: int = 10_000) -> list[Any]:
    items: list[Any] = []
    for _ in range(depth):
        items = [items]
    return items


def mutating_dict() -> dict[str, Any]:
    """A dict whose values change the dict while they are converted."""
    d: dict[str, Any] = {}

    class Grow(int):
        def __str__(self) -> str:
            d[f"grown-{len(d)}"] = "x"
            return "5"

        __repr__ = __str__

        def __float__(self) -> float:
            d[f"grown-{len(d)}"] = 1
            return 5.0

    d.update({"a": Grow(1), "b": Grow(2), "key": "m", "enabled": True, "percentage": Grow(3)})
    return d


# name → a factory for the value (fresh per test: some values are mutable or stateful).
HOSTILE: dict[str, Callable[[], Any]] = {
    "none": lambda: None,
    "int": lambda: 7,
    "negative int": lambda: -1,
    "zero": lambda: 0,
    "huge int": lambda: 10**400,
    "float": lambda: 1.5,
    "nan": lambda: math.nan,
    "inf": lambda: math.inf,
    "-inf": lambda: -math.inf,
    "1e308": lambda: 1e308,
    "True": lambda: True,
    "False": lambda: False,
    "bytes": lambda: b"new-checkout",
    "bytearray": lambda: bytearray(b"[]"),
    "empty list": list,
    "tuple": lambda: ("a", "b"),
    "set": lambda: {"a"},
    "empty dict": dict,
    "object": object,
    "type": lambda: str,
    "function": lambda: print,
    "empty str": lambda: "",
    "10 MB str": lambda: HUGE,
    "lone surrogate": lambda: "\ud800",
    "surrogate pair text": lambda: "a\udfffb",
    "NUL": lambda: "a\x00b",
    "CRLF": lambda: "a\r\nX-Injected: 1",
    "RTL override": lambda: "\u202eenterprise\u202c",
    "emoji": lambda: "🚩👩‍👩‍👧",
    "combining": lambda: "e\u0301",
    "non-character": lambda: "\uffff\U0010ffff",
    "str subclass": lambda: EvilStr("enterprise"),
    "int subclass": lambda: EvilInt(3),
    "lying int": lambda: LyingInt(5),
    "float subclass": lambda: EvilFloat(2.5),
    "dict subclass": lambda: EvilDict({"key": "d", "enabled": True}),
    "non-str keys": lambda: {1: "a", b"k": "v", ("t",): 2},
    "evil object": Evil,
    "recursive list": recursive_list,
    "recursive dict": recursive_dict,
    "10,000-deep list": deep_list,
    "deep JSON text": lambda: "[" * 100_000 + "]" * 100_000,
    "1e999 JSON text": lambda: '[{"key": "a", "enabled": true, "percentage": 1e999}]',
    "lying __len__": LyingLen,
    "sys.maxsize __len__": MaxLen,
    "failing generator": failing_generator,
    "mutating dict": mutating_dict,
    "dict with huge value": lambda: {"p": HUGE, "user_id": HUGE},
    "list of evil": lambda: [Evil(), EvilInt(1), EvilStr("x")],
}

ALLOWED = (TypeError, ValueError, OverflowError, OSError, FerroflagError, Boom)

BASE_FLAGS = [
    {"key": "on", "enabled": True, "default_variant": "base"},
    {"key": "split", "enabled": True, "percentage": 50, "variants": {"a": 1, "b": 1}},
]
CTX = EvalContext("user-1", plan="enterprise", properties={"beta": True})
ON = EvalResult(True, "base", "default")

EV = FlagEvaluator(BASE_FLAGS)
SERVERS: list[FlagServer] = []  # the module's loopback flag service, while its tests run


@pytest.fixture(scope="module", autouse=True)
def _server() -> Iterator[None]:
    SERVERS.append(FlagServer(BASE_FLAGS))
    yield
    SERVERS.pop().close()


def server_url() -> str:
    return SERVERS[0].url


@pytest.fixture(scope="module")
def flag_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "flags.json"
    path.write_text('[{"key": "on", "enabled": true, "default_variant": "base"}]')
    return path


def sync_client(**kwargs: Any) -> FlagSyncClient:
    return FlagSyncClient(FlagEvaluator(), server_url(), **{"interval": 0.5, "timeout": 2.0, **kwargs})


def started(make: Callable[[], Any], call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Runs `call(client)` on a client from `make()`, and always stops the client."""

    def run(_v: Any) -> None:
        client = make()
        try:
            call(client)
        finally:
            assert client.stop() in (True, False)

    return run


def flag_with(**fields: Any) -> list[dict[str, Any]]:
    return [{"key": "h", "enabled": True, **fields}]


def condition_with(**fields: Any) -> list[dict[str, Any]]:
    condition = {"attribute": "plan", "operator": "eq", "values": ["x"], **fields}
    return flag_with(rules=[{"conditions": [condition], "variant": "v"}])


# name → a call that puts the hostile value `v` in one argument. `FILE` is filled in by the fixture.
TARGETS: dict[str, Callable[[Any], Any]] = {
    # FlagEvaluator
    "FlagEvaluator(flags=v)": lambda v: FlagEvaluator(v),
    "update(v)": lambda v: EV.update(v),
    "update([v])": lambda v: EV.update([v]),
    "update: key": lambda v: EV.update(flag_with(key=v)),
    "update: enabled": lambda v: EV.update(flag_with(enabled=v)),
    "update: percentage": lambda v: EV.update(flag_with(percentage=v)),
    "update: rules": lambda v: EV.update(flag_with(rules=v)),
    "update: rules[0]": lambda v: EV.update(flag_with(rules=[v])),
    "update: rule conditions": lambda v: EV.update(flag_with(rules=[{"conditions": v}])),
    "update: rule variant": lambda v: EV.update(flag_with(rules=[{"variant": v}])),
    "update: rule priority": lambda v: EV.update(flag_with(rules=[{"priority": v}])),
    "update: condition attribute": lambda v: EV.update(condition_with(attribute=v)),
    "update: condition operator": lambda v: EV.update(condition_with(operator=v)),
    "update: condition values": lambda v: EV.update(condition_with(values=v)),
    "update: condition values[0]": lambda v: EV.update(condition_with(values=[v])),
    "update: matches pattern": lambda v: EV.update(condition_with(operator="matches", values=[v])),
    "update: variants": lambda v: EV.update(flag_with(variants=v)),
    "update: variant weight": lambda v: EV.update(flag_with(variants={"a": v, "b": 1})),
    "update: default_variant": lambda v: EV.update(flag_with(default_variant=v)),
    "update: unknown field": lambda v: EV.update(flag_with(future_field=v)),
    "update_json(v)": lambda v: EV.update_json(v),
    "update_json: as key": lambda v: EV.update_json('[{"key": "' + v + '", "enabled": true}]'),
    "load_file(v)": lambda v: EV.load_file(v),
    "evaluate(v, ctx)": lambda v: EV.evaluate(v, CTX),
    "evaluate(key, v)": lambda v: EV.evaluate("on", v),
    "is_enabled(v, ctx)": lambda v: EV.is_enabled(v, CTX),
    "is_enabled(key, v)": lambda v: EV.is_enabled("on", v),
    "is_enabled(default=v)": lambda v: EV.is_enabled("missing", CTX, default=v),
    "get_variant(v, ctx)": lambda v: EV.get_variant(v, CTX),
    "get_variant(key, v)": lambda v: EV.get_variant("split", v),
    "evaluate_all(v)": lambda v: EV.evaluate_all(v),
    "is_enabled_many(v, ...)": lambda v: EV.is_enabled_many(v, [CTX]),
    "is_enabled_many(key, v)": lambda v: EV.is_enabled_many("on", v),
    "is_enabled_many(key, [v])": lambda v: EV.is_enabled_many("on", [CTX, v]),
    "is_enabled_many(default=v)": lambda v: EV.is_enabled_many("missing", [CTX], default=v),
    "explain(v, ctx)": lambda v: EV.explain(v, CTX),
    "explain(key, v)": lambda v: EV.explain("split", v),
    "get_config(v)": lambda v: EV.get_config(v),
    "v in evaluator": lambda v: v in EV,
    # contexts
    "EvalContext(user_id=v)": lambda v: EV.evaluate("split", EvalContext(v)),
    "EvalContext(email=v)": lambda v: EvalContext("u", email=v),
    "EvalContext(plan=v)": lambda v: EvalContext("u", plan=v),
    "EvalContext(country=v)": lambda v: EvalContext("u", country=v),
    "EvalContext(properties=v)": lambda v: EvalContext("u", properties=v),
    "EvalContext(properties={p: v})": lambda v: EV.evaluate("on", EvalContext("u", properties={"p": v})),
    "EvalContext(properties={v: x})": lambda v: EvalContext("u", properties={v: "x"}),
    "EvalContext.get(v)": lambda v: CTX.get(v),
    "EvalContext == v": lambda v: CTX.__eq__(v),
    "context dict {user_id: v}": lambda v: EV.evaluate("split", {"user_id": v}),
    "context dict {email: v}": lambda v: EV.evaluate("on", {"user_id": "u", "email": v}),
    "context dict {properties: v}": lambda v: EV.evaluate("on", {"user_id": "u", "properties": v}),
    "context dict {v: x}": lambda v: EV.evaluate("on", {v: "x"}),
    # results
    "EvalResult(enabled=v)": lambda v: EvalResult(v),
    "EvalResult(variant=v)": lambda v: EvalResult(True, v),
    "EvalResult(reason=v)": lambda v: EvalResult(True, "", v),
    "EvalResult == v": lambda v: v == ON,
    # config classes
    "Condition(attribute=v)": lambda v: Condition(v, "eq"),
    "Condition(operator=v)": lambda v: Condition("plan", v, ["x"]),
    "Condition(values=v)": lambda v: Condition("plan", "eq", v),
    "Condition(values=[v])": lambda v: Condition("plan", "eq", [v]),
    "Condition.from_dict(v)": lambda v: Condition.from_dict(v),
    "Condition.from_dict({values: v})": lambda v: Condition.from_dict(
        {"attribute": "a", "operator": "in", "values": v}
    ),
    "Rule(conditions=v)": lambda v: Rule(v),
    "Rule(conditions=[v])": lambda v: Rule([v]),
    "Rule(variant=v)": lambda v: Rule(variant=v),
    "Rule(priority=v)": lambda v: Rule(priority=v),
    "Rule.from_dict(v)": lambda v: Rule.from_dict(v),
    "Rule.from_dict({priority: v})": lambda v: Rule.from_dict({"priority": v}),
    "FlagConfig(key=v)": lambda v: EV.update([FlagConfig(v)]),
    "FlagConfig(enabled=v)": lambda v: FlagConfig("k", enabled=v),
    "FlagConfig(percentage=v)": lambda v: EV.update([FlagConfig("k", percentage=v)]),
    "FlagConfig(rules=v)": lambda v: FlagConfig("k", rules=v),
    "FlagConfig(rules=[v])": lambda v: FlagConfig("k", rules=[v]),
    "FlagConfig(variants=v)": lambda v: FlagConfig("k", variants=v),
    "FlagConfig(variants={a: v})": lambda v: EV.update([FlagConfig("k", variants={"a": v, "b": 1})]),
    "FlagConfig(variants={v: 1})": lambda v: FlagConfig("k", variants={v: 1}),
    "FlagConfig(default_variant=v)": lambda v: FlagConfig("k", default_variant=v),
    "FlagConfig.from_dict(v)": lambda v: FlagConfig.from_dict(v),
    "FlagConfig.from_dict: percentage": lambda v: FlagConfig.from_dict(flag_with(percentage=v)[0]).to_dict(),
    # sync client (never started here unless the target says so)
    "FlagSyncClient(evaluator=v)": lambda v: FlagSyncClient(v, server_url()),
    "FlagSyncClient(api_url=v)": lambda v: FlagSyncClient(FlagEvaluator(), v),
    "FlagSyncClient(interval=v)": lambda v: sync_client(interval=v),
    "FlagSyncClient(timeout=v)": lambda v: sync_client(timeout=v),
    "FlagSyncClient(path=v)": lambda v: sync_client(path=v),
    "FlagSyncClient(headers=v)": lambda v: sync_client(headers=v),
    "FlagSyncClient(headers={X: v})": lambda v: sync_client(headers={"X-Test": v}),
    "FlagSyncClient(headers={v: x})": lambda v: sync_client(headers={v: "x"}),
    "FlagSyncClient(cache_path=v)": lambda v: sync_client(cache_path=v),
    "FlagSyncClient(connect_timeout=v)": lambda v: sync_client(connect_timeout=v),
    "FlagSyncClient(max_body_bytes=v)": lambda v: sync_client(max_body_bytes=v),
    "FlagSyncClient(backoff_cap=v)": lambda v: sync_client(backoff_cap=v),
    "FlagSyncClient(ca_bundle=v)": lambda v: sync_client(ca_bundle=v),
    "FlagSyncClient.start(wait=v)": lambda v: started(sync_client, lambda c: c.start(wait=v))(v),
    "FlagSyncClient.wait_ready(v)": lambda v: sync_client().wait_ready(v),
    "FlagSyncClient.wait_ready(v), running": lambda v: started(
        sync_client, lambda c: (c.start(wait=0), c.wait_ready(v))
    )(v),
    "FlagSyncClient.__exit__(v, v, v)": lambda v: sync_client().__exit__(v, v, v),
}

FILE_TARGETS: dict[str, Callable[[Any, Path], Any]] = {
    "FlagFileWatcher(evaluator=v)": lambda v, _f: FlagFileWatcher(v, _f),
    "FlagFileWatcher(path=v)": lambda v, _f: FlagFileWatcher(FlagEvaluator(), v),
    "FlagFileWatcher(interval=v)": lambda v, f: FlagFileWatcher(FlagEvaluator(), f, interval=v),
    "FlagFileWatcher(max_bytes=v)": lambda v, f: FlagFileWatcher(FlagEvaluator(), f, max_bytes=v),
    "FlagFileWatcher.start(wait=v)": lambda v, f: started(
        lambda: FlagFileWatcher(FlagEvaluator(), f, interval=0.5), lambda w: w.start(wait=v)
    )(v),
    "FlagFileWatcher.wait_ready(v)": lambda v, f: FlagFileWatcher(FlagEvaluator(), f).wait_ready(v),
}

# Waits that a valid positive number would really wait for: only for started clients (which are
# ready within milliseconds from the loopback server) or for clients that are not running.
CASES = [(t, h) for t in TARGETS for h in HOSTILE]
FILE_CASES = [(t, h) for t in FILE_TARGETS for h in HOSTILE]


def check(call: Callable[[], Any]) -> None:
    before = EV.version
    error: BaseException | None = None
    try:
        call()
    except ALLOWED as raised:
        error = raised
    if error is not None:
        # SystemError is an Exception too, but never one of ALLOWED: it would have propagated.
        assert str(error) or isinstance(error, Boom), f"{type(error).__name__} without a message"
        assert EV.version == before, "a call that raised changed the snapshot"
    if EV.version != before:
        EV.update(BASE_FLAGS)
    # The evaluator keeps answering, from a whole snapshot.
    assert EV.evaluate("on", CTX) == ON
    assert EV.evaluate_all(CTX).keys() == {"on", "split"}
    assert EV.is_enabled("on", {"user_id": "u"})


@pytest.mark.parametrize(("target", "value"), CASES, ids=[f"{t} <- {h}" for t, h in CASES])
def test_hostile_argument(target: str, value: str) -> None:
    v = HOSTILE[value]()
    check(lambda: TARGETS[target](v))


@pytest.mark.parametrize(("target", "value"), FILE_CASES, ids=[f"{t} <- {h}" for t, h in FILE_CASES])
def test_hostile_file_watcher_argument(target: str, value: str, flag_file: Path) -> None:
    v = HOSTILE[value]()
    check(lambda: FILE_TARGETS[target](v, flag_file))


# Defined results: what some hostile values give, pinned so a change is a decision, not an accident.


def test_huge_ids_and_properties_evaluate_like_short_ones() -> None:
    ctx = EvalContext(HUGE, properties={"p": HUGE})
    assert len(ctx.user_id) == len(HUGE)
    assert ctx.get("p") == HUGE
    first = EV.evaluate("split", ctx)
    assert EV.evaluate("split", {"user_id": HUGE}) == first
    assert first.reason in ("percentage", "percentage_excluded")


def test_lone_surrogates_are_a_clear_unicode_error() -> None:
    for call in (
        lambda: EvalContext("\ud800"),
        lambda: EV.evaluate("\ud800", CTX),
        lambda: EV.update([{"key": "\ud800", "enabled": True}]),
        lambda: EV.update_json('[{"key": "\ud800", "enabled": true}]'),
    ):
        # UnicodeEncodeError, or a ConfigError naming the field when it is inside a definition.
        with pytest.raises(ValueError, match="surrogates not allowed"):
            call()
    # A surrogate escape inside JSON text is valid JSON; serde_json refuses a lone one.
    with pytest.raises(ConfigError):
        EV.update_json(b'[{"key": "\\ud800", "enabled": true}]')
    assert "\ud800" not in EV


def test_unicode_keys_and_values_are_kept_exactly() -> None:
    for text in ("a\x00b", "\u202eenterprise\u202c", "🚩👩‍👩‍👧", "e\u0301", "\uffff\U0010ffff"):
        evaluator = FlagEvaluator(
            [
                {
                    "key": text,
                    "enabled": True,
                    "rules": [
                        {"conditions": [{"attribute": text, "operator": "eq", "values": [text]}], "variant": text}
                    ],
                }
            ]
        )
        assert evaluator.evaluate(text, EvalContext(text, properties={text: text})) == EvalResult(
            True, text, "rule_match"
        )
        assert evaluator.keys() == [text]
        assert text in evaluator


def test_nan_and_infinite_numbers_are_refused() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            FlagConfig("k", percentage=bad)
        with pytest.raises(ValueError, match="finite"):
            FlagConfig("k", variants={"a": bad})
        with pytest.raises(ConfigError):
            EV.update(flag_with(percentage=bad))
        with pytest.raises(ConfigError):
            EV.update(flag_with(variants={"a": bad}))
        with pytest.raises(ValueError, match="interval"):
            sync_client(interval=bad)
    with pytest.raises(ConfigError, match="finite"):
        EV.update_json('[{"key": "a", "enabled": true, "percentage": 1e999}]')


def test_bools_are_not_numbers_in_documents_and_weights() -> None:
    with pytest.raises(ConfigError):
        EV.update(flag_with(percentage=True))
    with pytest.raises(TypeError):
        FlagConfig("k", variants={"a": True})
    with pytest.raises(TypeError):
        EvalContext(True)
    # The keyword argument goes through Python's float(): True is 1.0 there, as in the stdlib.
    assert FlagConfig("k", percentage=True).percentage == 1.0


def test_recursive_and_deep_structures_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        EV.update([recursive_dict()])
    with pytest.raises(ConfigError):
        EV.update_json("[" * 100_000 + "]" * 100_000)


def test_a_dict_that_changes_while_read_is_read_as_it_was() -> None:
    ctx = EvalContext("u", properties=mutating_dict())
    assert ctx.properties["a"] == "5"
    assert not any(name.startswith("grown") for name in ctx.properties)


def test_a_lying_len_reserves_nothing() -> None:
    assert EV.is_enabled_many("on", LyingLen()) == []
    assert EV.is_enabled_many("on", MaxLen()) == []


# Resource bounds (docs/spec.md §6, "Pattern limits" and "Evaluation time"): documents and contexts
# that once exhausted memory or froze the interpreter.


def _peak_rss_mb_of(code: str) -> tuple[float, str]:
    """Runs `code` in a fresh interpreter and returns its peak RSS and what it printed."""
    import pathlib
    import subprocess

    if not pathlib.Path("/proc/self/status").exists():
        pytest.skip(
            "reads the peak RSS from Linux's /proc (the release workflow also runs this file on macOS and Windows)"
        )

    script = (
        code
        + "\nimport pathlib\n"
        + ("print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0])")
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    *lines, peak = out.stdout.strip().splitlines()
    return int(peak.split()[1]) / 1024, "\n".join(lines)


def test_a_document_of_large_patterns_stays_within_the_pattern_budget() -> None:
    # 316 KB: 2,000 conditions like `\w{16}` (0.9 MB compiled each) took 24 MB -> 1.85 GB, and 3.6 GB
    # once two more threads evaluated.
    code = r"""
import json, threading
from ferroflag import EvalContext, FlagEvaluator
condition = {"attribute": "ua", "operator": "matches"}
rules = [{"conditions": [{**condition, "values": [rf"^\w{{16}}-{i}$"]}]} for i in range(2000)]
ev = FlagEvaluator()
ev.update_json(json.dumps({"format": 2, "flags": [{"key": "f", "enabled": True, "rules": rules}]}))
ctx = EvalContext("u", properties={"ua": "é" * 2000})
threads = [threading.Thread(target=lambda: [ev.is_enabled("f", ctx) for _ in range(3)]) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print(sum("pattern memory" in w.message for w in ev.warnings))
"""
    peak_mb, refused = _peak_rss_mb_of(code)
    assert int(refused) >= 1980
    # 16 MiB of patterns and caches per document, plus 16 MiB per further thread: far below what it was.
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.slow
def test_a_slow_evaluation_lets_other_threads_run() -> None:
    import threading

    # Sixteen of the widest patterns a document may hold, against 4 KiB of input: hundreds of ms.
    conditions = [{"attribute": "v", "operator": "matches", "values": [f"1[01]{{1000}}[^01]{i:x}"]} for i in range(16)]
    ev = FlagEvaluator()
    ev.update([{"key": "slow", "enabled": True, "rules": [{"conditions": [c]} for c in conditions]}])
    assert not ev.warnings
    ctx = EvalContext("u", properties={"v": "1" * 4096})
    gap, stop, started = [0.0], threading.Event(), threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        started.set()
        while not stop.is_set():
            now = time.perf_counter()
            gap[0] = max(gap[0], now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    started.wait()
    try:
        for call in (ev.is_enabled, ev.evaluate, ev.get_variant, ev.get_value, ev.explain):
            gap[0] = 0.0
            t0 = time.perf_counter()
            call("slow", ctx)
            took = time.perf_counter() - t0
            # With the GIL held for the whole call, the ticker would stand still for all of it.
            assert gap[0] < took / 2, f"{call.__name__}: ticker stopped {gap[0] * 1e3:.0f} of {took * 1e3:.0f} ms"
    finally:
        stop.set()
        ticker.join()


def test_the_widest_pattern_that_froze_the_interpreter_is_refused_with_a_warning() -> None:
    ev = FlagEvaluator()
    ev.update(
        [
            {
                "key": "f",
                "enabled": True,
                "rules": [{"conditions": [{"attribute": "v", "operator": "matches", "values": ["1[01]{5000}[^01]"]}]}],
            }
        ]
    )
    (warning,) = ev.warnings
    assert warning.path.endswith("conditions[0].values[0]")
    assert "5002 wide" in warning.message
    # 0.34-0.75 s with the GIL held before; now the condition is false at once.
    assert ev.is_enabled("f", EvalContext("u", properties={"v": "1" * 16384 + "x"})) is False


def test_error_and_warning_texts_quote_a_prefix_of_huge_values() -> None:
    key = "k" * 15_000_000
    with pytest.raises(ConfigError) as raised:
        FlagEvaluator().update_json(json.dumps({"format": 2, "flags": [{"key": key, "enabled": "yes"}]}))
    assert len(str(raised.value)) < 1000
    assert len(raised.value.message) < 1000
    ev = FlagEvaluator()
    ev.update(
        [
            {
                "key": "f",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "v", "operator": "matches", "values": ["(" + "z" * 1_000_000]}]}
                ],
            }
        ]
    )
    (warning,) = ev.warnings
    assert len(warning.message) < 1000
    assert len(str(warning)) < 1000
