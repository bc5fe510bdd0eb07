"""The original design's three behaviours (docs/spec.md §8): a 50 % rollout splits users evenly, bucketing is
sticky, and rules target users by plan. Only the seed's API shapes are used here."""

from __future__ import annotations

from ferroflag import Condition, EvalContext, FlagConfig, FlagEvaluator, Rule


def test_fifty_percent_rollout_enables_about_half_of_ten_thousand_users(user_ids):
    evaluator = FlagEvaluator()
    evaluator.update([FlagConfig(key="test", enabled=True, percentage=50)])

    enabled = sum(evaluator.is_enabled("test", EvalContext(user_id=user_id)) for user_id in user_ids)

    assert 4_800 <= enabled <= 5_200


def test_rollout_reasons_split_between_included_and_excluded(user_ids):
    evaluator = FlagEvaluator([FlagConfig(key="test", enabled=True, percentage=50)])

    reasons = {evaluator.evaluate("test", EvalContext(user_id=user_id)).reason for user_id in user_ids}

    assert reasons == {"percentage", "percentage_excluded"}


def test_same_user_gets_the_same_answer_on_every_evaluation(user_ids):
    evaluator = FlagEvaluator()
    evaluator.update([FlagConfig(key="sticky", enabled=True, percentage=30)])

    for user_id in user_ids[:2_000]:
        first = evaluator.evaluate("sticky", EvalContext(user_id=user_id))
        for _ in range(3):
            assert evaluator.evaluate("sticky", EvalContext(user_id=user_id)) == first
            assert evaluator.is_enabled("sticky", EvalContext(user_id=user_id)) is first.enabled


def test_same_user_gets_the_same_answer_from_two_evaluators(user_ids):
    # Built differently (objects vs. dicts, other flags around it, another order): the bucket depends
    # only on the flag key and the user id.
    one = FlagEvaluator([FlagConfig(key="sticky", enabled=True, percentage=30)])
    two = FlagEvaluator()
    two.update(
        [
            {"key": "other", "enabled": True, "percentage": 70},
            {"key": "sticky", "enabled": True, "percentage": 30},
        ]
    )

    answers_one = [one.is_enabled("sticky", EvalContext(user_id=u)) for u in user_ids]
    answers_two = [two.is_enabled("sticky", EvalContext(user_id=u, plan="pro")) for u in user_ids]

    assert answers_one == answers_two
    assert 0 < sum(answers_one) < len(user_ids)


def test_plan_rule_targets_enterprise_users_only(user_ids):
    # docs/spec.md §2 step 5: a flag with rules and no rollout serves only the contexts a rule matches.
    evaluator = FlagEvaluator()
    evaluator.update(
        [
            FlagConfig(
                key="enterprise-only",
                enabled=True,
                rules=[Rule(conditions=[Condition("plan", "in", ["enterprise"])], variant="", priority=0)],
            )
        ]
    )

    for user_id in user_ids[:1_000]:
        enterprise = evaluator.evaluate("enterprise-only", EvalContext(user_id=user_id, plan="enterprise"))
        assert (enterprise.enabled, enterprise.variant, enterprise.reason) == (True, "", "rule_match")
        for plan in ("free", "team", "", "Enterprise"):
            other = evaluator.evaluate("enterprise-only", EvalContext(user_id=user_id, plan=plan))
            assert (other.enabled, other.variant, other.reason) == (False, "", "no_match")
            assert evaluator.is_enabled("enterprise-only", EvalContext(user_id=user_id, plan=plan)) is False
