"""Evaluates a flag file for a handful of users and prints what each one sees, and why.

    python examples/demo.py [FLAG_FILE]
"""

from __future__ import annotations

import sys
from pathlib import Path

from ferroflag import EvalContext, FlagEvaluator

USERS = [
    EvalContext("alice", email="alice@example.com", plan="free", country="US"),
    EvalContext("bob", plan="enterprise", country="DE", properties={"beta": True, "app_version": "2.4.1"}),
    EvalContext("carol", plan="team", country="FR", properties={"app_version": "2.2.0"}),
    EvalContext("dave", plan="free", country="GB", properties={"beta": True, "app_version": "2.3.0"}),
    EvalContext("erin", plan="free", country="NL"),
    EvalContext("frank", plan="pro", country="US", properties={"beta": "true", "app_version": "v3.0.0"}),
]

WHY = {
    "rule_match": "a targeting rule matched",
    "percentage": "inside the percentage rollout",
    "percentage_excluded": "outside the percentage rollout",
    "default": "flag on for everyone",
    "disabled": "flag switched off",
    "not_found": "no such flag",
}


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("flags.json")
    evaluator = FlagEvaluator()
    evaluator.load_file(path)
    print(f"Loaded {len(evaluator)} flags from {path} (snapshot version {evaluator.version})")
    for warning in evaluator.warnings:
        print(f"  warning: {warning}")
    for ctx in USERS:
        print(f"\n{ctx!r}")
        for key, result in evaluator.evaluate_all(ctx).items():
            state = "ON " if result.enabled else "off"
            variant = f" variant={result.variant!r}" if result.variant else ""
            print(f"  {state} {key:<14}{variant:<20} {WHY[result.reason]} ({result.reason})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
