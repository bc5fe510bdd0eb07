"""Format-2 model costs, and the same workloads side by side with another build.

    python benches/bench_model.py                      # this build: costs and budgets
    python benches/bench_model.py --baseline DIR       # ... and as ratios against the package in DIR
    python benches/bench_model.py --quick              # a smoke run (CI)

DIR holds a `ferroflag` package directory with its built extension (e.g. a copy of python/ferroflag
taken before a change). Both extensions are loaded into this one process (the baseline under another
package name) and every round runs each workload once per build, alternating, so both see the same
machine at the same moment; the table shows medians over the rounds and the ratio this / baseline.
Budgets (issues "Flag model format 2" and "Typed flag values"): `update()` of 500
flags built from dicts <= 1 ms, `update_json` of 10,000 flags <= 50 ms, `is_enabled` within +5 %
of the previous build, `get_value` of a scalar <= is_enabled + 40 ns, a 10-key dict value <= 1 us,
a condition through a segment within 10 % of the same condition inline.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _timed(fn: Callable[[], object], inner: int, repeats: int) -> float:
    """Best-of-`repeats` nanoseconds per call of `fn`, each repeat `inner` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / inner)
    return best


def _flags_500() -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []
    for i in range(500):
        flag: dict[str, Any] = {"key": f"flag-{i}", "enabled": i % 7 != 0, "percentage": (i * 13) % 100}
        if i % 3 == 0:
            flag["rules"] = [
                {
                    "conditions": [{"attribute": "plan", "operator": "in", "values": ["enterprise", "team"]}],
                    "variant": "on",
                    "priority": i % 5,
                }
            ]
        if i % 4 == 0:
            flag["variants"] = {"a": 50, "b": 50}
        flags.append(flag)
    return flags


def _document_10k() -> bytes:
    flags = []
    for i in range(10_000):
        flags.append(
            {
                "key": f"flag-{i:05d}",
                "enabled": True,
                "percentage": (i * 7) % 100,
                "rules": [
                    {
                        "conditions": [
                            {"attribute": "plan", "operator": "eq", "values": ["enterprise"]},
                            {"attribute": "country", "operator": "in", "values": ["NL", "DE", "FR"]},
                        ],
                        "variant": "v",
                        "priority": i % 3,
                    }
                ],
                "variants": {"a": 1, "b": 2, "c": 3},
                "default_variant": "a",
            }
        )
    return json.dumps({"flags": flags}).encode()


def load_extension(package_dir: Path, name: str) -> Any:
    """The native module of the `ferroflag` package in `package_dir`, imported as `name._ferroflag`."""
    candidates = sorted((package_dir / "ferroflag").glob("_ferroflag*.so"))
    if not candidates:
        raise SystemExit(f"no built extension in {package_dir / 'ferroflag'}")
    parent = types.ModuleType(name)
    parent.__path__ = []
    sys.modules[name] = parent
    spec = importlib.util.spec_from_file_location(f"{name}._ferroflag", candidates[0])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(ferroflag: Any, quick: bool) -> dict[str, float]:
    """Every workload against one build's native module."""
    EvalContext, FlagEvaluator = ferroflag.EvalContext, ferroflag.FlagEvaluator

    inner, repeats = (20_000, 3) if quick else (200_000, 7)
    out: dict[str, float] = {}
    ctx = EvalContext("user-123", plan="free", country="NL")
    rollout = FlagEvaluator([{"key": "rollout", "enabled": True, "percentage": 50}])
    out["is_enabled rollout (ns)"] = _timed(lambda: rollout.is_enabled("rollout", ctx), inner, repeats)
    rule = {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["free"]}], "variant": "on"}
    hit = FlagEvaluator([{"key": "hit", "enabled": True, "rules": [rule]}])
    out["is_enabled rule hit (ns)"] = _timed(lambda: hit.is_enabled("hit", ctx), inner, repeats)
    out["evaluate rollout (ns)"] = _timed(lambda: rollout.evaluate("rollout", ctx), inner, repeats)

    flags = _flags_500()
    evaluator = FlagEvaluator()
    out["update() 500 dict flags (ms)"] = _timed(lambda: evaluator.update(flags), 5 if quick else 20, repeats) / 1e6
    document = _document_10k()
    out["update_json 10,000 flags (ms)"] = _timed(lambda: evaluator.update_json(document), 1, 3 if quick else 7) / 1e6

    if hasattr(ferroflag.FlagEvaluator, "get_value"):
        values = FlagEvaluator(
            [
                {"key": "limit", "enabled": True, "default_variant": "on", "values": {"on": 50}},
                {
                    "key": "config",
                    "enabled": True,
                    "default_variant": "on",
                    "values": {"on": {f"k{i}": i for i in range(10)}},
                },
            ]
        )
        out["is_enabled flag with values (ns)"] = _timed(lambda: values.is_enabled("limit", ctx), inner, repeats)
        out["get_value scalar (ns)"] = _timed(lambda: values.get_value("limit", ctx), inner, repeats)
        out["get_value 10-key dict (ns)"] = _timed(lambda: values.get_value("config", ctx), inner // 4, repeats)
        condition = {"attribute": "plan", "operator": "in", "values": ["free", "team"]}
        inline = FlagEvaluator([{"key": "f", "enabled": True, "rules": [{"conditions": [condition]}]}])
        segment = FlagEvaluator(
            [{"key": "f", "enabled": True, "rules": [{"conditions": [{"operator": "in_segment", "values": ["s"]}]}]}],
            segments=[{"key": "s", "rules": [{"conditions": [condition]}]}],
        )
        out["condition inline (ns)"] = _timed(lambda: inline.is_enabled("f", ctx), inner, repeats)
        out["condition through a segment (ns)"] = _timed(lambda: segment.is_enabled("f", ctx), inner, repeats)
        big = [f"user-{i}" for i in range(10_000)]
        many = FlagEvaluator(
            [
                {
                    "key": "in",
                    "enabled": True,
                    "rules": [{"conditions": [{"attribute": "user_id", "operator": "in", "values": big}]}],
                },
                {
                    "key": "seg",
                    "enabled": True,
                    "rules": [{"conditions": [{"operator": "in_segment", "values": ["b"]}]}],
                },
            ],
            segments=[
                {"key": "b", "rules": [{"conditions": [{"attribute": "user_id", "operator": "in", "values": big}]}]}
            ],
        )
        out["in over 10,000 values (ns)"] = _timed(lambda: many.is_enabled("in", ctx), inner, repeats)
        out["in_segment over 10,000 values (ns)"] = _timed(lambda: many.is_enabled("seg", ctx), inner, repeats)
        prerequisite = FlagEvaluator(
            [
                {"key": "parent", "enabled": True, "percentage": 50},
                {"key": "child", "enabled": True, "prerequisites": [{"key": "parent"}]},
            ]
        )
        out["prerequisite alone (ns)"] = _timed(lambda: prerequisite.is_enabled("parent", ctx), inner, repeats)
        out["flag with that prerequisite (ns)"] = _timed(lambda: prerequisite.is_enabled("child", ctx), inner, repeats)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="directory holding another build's ferroflag package")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON too")
    args = parser.parse_args()
    import ferroflag._ferroflag as current

    baseline = None if args.baseline is None else load_extension(args.baseline, "ferroflag_baseline")
    rounds = 1 if args.quick else args.rounds
    this: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    for _ in range(rounds):
        this.append(measure(current, args.quick))
        if baseline is not None:
            base.append(measure(baseline, args.quick))

    def med(runs: list[dict[str, float]], name: str) -> float | None:
        found = [r[name] for r in runs if name in r]
        return statistics.median(found) if found else None

    print(f"| workload (median of {rounds}) | this build | baseline | this / baseline |")
    print("|---|---:|---:|---:|")
    for name in this[0]:
        now = med(this, name)
        then = med(base, name) if base else None
        ratio = f"{now / then:.3f}" if now is not None and then else ""
        print(f"| {name} | {now:.3f} | {'' if then is None else f'{then:.3f}'} | {ratio} |")
    now_is, now_value = med(this, "is_enabled flag with values (ns)"), med(this, "get_value scalar (ns)")
    inline, segment = med(this, "condition inline (ns)"), med(this, "condition through a segment (ns)")
    if now_is and now_value and inline and segment:
        print()
        print(f"get_value scalar - is_enabled: {now_value - now_is:+.1f} ns (budget +40 ns)")
        print(f"condition through a segment / inline: {segment / inline:.3f} (budget 1.10)")
    if args.json:
        print(json.dumps({name: med(this, name) for name in this[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
