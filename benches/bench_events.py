"""The cost of exposure events (docs/spec.md §8), side by side in one process.

    python benches/bench_events.py                    # this build
    python benches/bench_events.py --baseline DIR     # ... and is_enabled on an untracked flag against DIR's build
    python benches/bench_events.py --quick            # a smoke run (CI)

Budgets (issue "Evaluation events"): `is_enabled` on an untracked flag within +3 % of the previous build
(with exposures on for the evaluator); on a tracked flag the added cost per evaluation is stated (target
<= 50 ns) for a repeated answer (deduplicated) and for a new subject each time; and the throughput of the
whole path — evaluation, queue, dispatcher thread, sink — at 1 M exposures.

Each workload runs in blocks of 1,000 calls, the workloads' blocks alternating, so all see the same machine
at the same moment; the table shows the median block (the Python loop included, the same in every row).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import load_extension

ROOT = Path(__file__).resolve().parent.parent

UNTRACKED = {"key": "plain", "enabled": True, "percentage": 50}
TRACKED = {"key": "exp", "enabled": True, "percentage": 50, "metadata": {"track": True}}


def per_call_ns(fn: Any, key: str, contexts: list[Any], repeat: int) -> float:
    n = len(contexts)
    started = time.perf_counter_ns()
    for _ in range(repeat):
        for ctx in contexts:
            fn(key, ctx)
    return (time.perf_counter_ns() - started) / (repeat * n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a directory holding a `ferroflag` package built before")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    exposures_total = 50_000 if args.quick else 1_000_000

    this = load_extension(ROOT / "python", "ff_this")
    base = load_extension(args.baseline, "ff_base") if args.baseline else None

    def make(module: Any, exposures: bool) -> Any:
        evaluator = module.FlagEvaluator([UNTRACKED, TRACKED])
        if exposures:
            evaluator.on_exposure(lambda batch: None, capacity=1 << 20)
        return evaluator

    on = make(this, True)
    off = make(this, False)
    one, many = this.EvalContext("user-1"), [this.EvalContext(f"user-{i}") for i in range(1000)]
    workloads: dict[str, tuple[Any, str, list[Any]]] = {
        "is_enabled untracked, exposures off (ns)": (off.is_enabled, "plain", [one] * 1000),
        "is_enabled untracked, exposures on (ns)": (on.is_enabled, "plain", [one] * 1000),
        "is_enabled tracked, exposures off (ns)": (off.is_enabled, "exp", [one] * 1000),
        "is_enabled tracked, repeated answer (ns)": (on.is_enabled, "exp", [one] * 1000),
        "is_enabled tracked, new subject (ns)": (on.is_enabled, "exp", many),
    }
    base_ev = make(base, False) if base is not None else None
    if base is not None and base_ev is not None:
        workloads["baseline: is_enabled (ns)"] = (base_ev.is_enabled, "plain", [base.EvalContext("user-1")] * 1000)

    samples: dict[str, list[float]] = {name: [] for name in workloads}
    blocks = 20 if args.quick else 300
    for _ in range(blocks):
        # A new snapshot each block: the 1,000 subjects are new to the deduplication window again.
        on.update([UNTRACKED, TRACKED])
        for name, (fn, key, contexts) in workloads.items():
            samples[name].append(per_call_ns(fn, key, contexts, 1))

    # Throughput: exposures_total new exposures through the dispatcher thread to a counting sink.
    delivered = [0]

    def count(batch: list[Any]) -> None:
        delivered[0] += len(batch)

    sink_ev = this.FlagEvaluator([TRACKED])
    stream = sink_ev.on_exposure(count, capacity=1 << 20, batch_size=10_000, interval=0.05)
    contexts = [this.EvalContext(f"subject-{i}") for i in range(exposures_total)]
    started = time.perf_counter()
    for ctx in contexts:
        sink_ev.is_enabled("exp", ctx)
    stream.flush()
    deadline = time.monotonic() + 60
    while delivered[0] < stream.stats().recorded and time.monotonic() < deadline:
        time.sleep(0.01)
    took = time.perf_counter() - started
    stats = stream.stats()

    mode = "quick" if args.quick else "full"
    print(f"\nferroflag exposure costs ({mode}; median of {blocks} blocks of 1,000 calls)\n")
    print("| workload | ns per call |")
    print("|---|---:|")
    med = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in med.items():
        print(f"| {name} | {value:.1f} |")
    untracked_ratio = med["is_enabled untracked, exposures on (ns)"] / med["is_enabled untracked, exposures off (ns)"]
    print(f"\nuntracked flag, exposures on / off: {untracked_ratio:.3f} (budget 1.03)")
    if base_ev is not None:
        ratio = med["is_enabled untracked, exposures on (ns)"] / med["baseline: is_enabled (ns)"]
        print(f"untracked flag, this build / baseline: {ratio:.3f} (budget 1.03)")
    base_cost = med["is_enabled tracked, exposures off (ns)"]
    print(
        f"tracked flag, added per evaluation: repeated answer "
        f"{med['is_enabled tracked, repeated answer (ns)'] - base_cost:+.1f} ns, "
        f"new subject {med['is_enabled tracked, new subject (ns)'] - base_cost:+.1f} ns (target <= 50 ns)"
    )
    print(
        f"sink path: {exposures_total:,} exposures evaluated and delivered in {took:.2f} s "
        f"({exposures_total / took:,.0f}/s); delivered {delivered[0]:,}, dropped {stats.dropped:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
