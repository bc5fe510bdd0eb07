"""The original pure-Python design's three tests, written against its API shapes: only the import line names ferroflag.

Kept so that a team moving over sees its expectations hold: a 50 % rollout enables
about half of 10,000 users, a user's answer is sticky, and an enterprise-only rule is off for a
free user (docs/spec.md §2 step 5).
"""

from ferroflag import Condition, EvalContext, FlagConfig, FlagEvaluator, Rule


def test_percentage_rollout():
    evaluator = FlagEvaluator()
    evaluator.update([FlagConfig(key="test", enabled=True, percentage=50)])

    enabled_count = sum(1 for i in range(10000) if evaluator.is_enabled("test", EvalContext(user_id=f"user-{i}")))

    assert 4800 <= enabled_count <= 5200


def test_sticky_bucketing():
    evaluator = FlagEvaluator()
    evaluator.update([FlagConfig(key="test", enabled=True, percentage=50)])
    ctx = EvalContext(user_id="user-123")

    results = [evaluator.is_enabled("test", ctx) for _ in range(100)]

    assert all(r == results[0] for r in results)


def test_rule_targeting():
    evaluator = FlagEvaluator()
    evaluator.update(
        [
            FlagConfig(
                key="enterprise-feature",
                enabled=True,
                rules=[Rule(conditions=[Condition("plan", "in", ["enterprise"])], variant="", priority=0)],
            )
        ]
    )

    assert evaluator.is_enabled("enterprise-feature", EvalContext(user_id="u1", plan="enterprise"))
    assert not evaluator.is_enabled("enterprise-feature", EvalContext(user_id="u2", plan="free"))
