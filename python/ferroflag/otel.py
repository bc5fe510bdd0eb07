"""OpenTelemetry `feature_flag.evaluation` events for flag evaluations (install `ferroflag[otel]`).

Each evaluation becomes an event named `feature_flag.evaluation` on the current span, with the attributes of
OpenTelemetry's feature-flag semantic conventions:

| attribute | value |
|---|---|
| `feature_flag.key` | the flag key |
| `feature_flag.provider.name` | `ferroflag` |
| `feature_flag.result.variant` | the variant served (left out when the flag has none) |
| `feature_flag.result.reason` | `targeting_match`, `split`, `default`, `disabled` or `error` |
| `feature_flag.context.id` | the context's targeting key (the user id), when there is one |
| `error.type` | `flag_not_found`, or the OpenFeature error code in lower case, on errors |
| `ferroflag.reason` | ferroflag's own reason (docs/spec.md §2), finer than the conventional one |

Two ways in, one event:

    # Through OpenFeature: a hook on the client (or api.add_hooks([...]) for every client).
    client.add_hooks([ferroflag.otel.EvaluationEventHook()])

    # Direct API: a wrapper that answers exactly as the evaluator and records each answer.
    flags = ferroflag.otel.TracedEvaluator(evaluator)
    flags.is_enabled("new-checkout", ctx)

Nothing is recorded when no span is recording, so an app without tracing pays one check per evaluation.
"""

from __future__ import annotations

from typing import Any

from openfeature.flag_evaluation import FlagEvaluationDetails, FlagValueType
from openfeature.hook import Hook, HookContext, HookHints
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from ferroflag import EvalContext, EvalResult, FlagEvaluator
from ferroflag.openfeature import PROVIDER_NAME, REASON_METADATA_KEY

__all__ = ["EVENT_NAME", "EvaluationEventHook", "TracedEvaluator", "evaluation_attributes", "record_evaluation"]

EVENT_NAME = "feature_flag.evaluation"

# ferroflag's reasons (docs/spec.md §2) in the conventions' well-known values.
_CONVENTIONAL_REASON = {
    "rule_match": "targeting_match",
    "prerequisite_failed": "targeting_match",
    "percentage": "split",
    "percentage_excluded": "split",
    "no_match": "default",
    "default": "default",
    "disabled": "disabled",
    "not_found": "error",
}


def evaluation_attributes(
    key: str,
    result: EvalResult,
    *,
    context_id: str | None = None,
) -> dict[str, AttributeValue]:
    """The event's attributes for one ferroflag answer."""
    attributes: dict[str, AttributeValue] = {
        "feature_flag.key": key,
        "feature_flag.provider.name": PROVIDER_NAME,
        "feature_flag.result.reason": _CONVENTIONAL_REASON.get(result.reason, "unknown"),
        "ferroflag.reason": result.reason,
    }
    if result.variant:
        attributes["feature_flag.result.variant"] = result.variant
    if context_id:
        attributes["feature_flag.context.id"] = context_id
    if result.reason == "not_found":
        attributes["error.type"] = "flag_not_found"
    return attributes


def record_evaluation(key: str, result: EvalResult, *, context_id: str | None = None) -> None:
    """Adds a `feature_flag.evaluation` event for `result` to the current span, if one is recording."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(EVENT_NAME, evaluation_attributes(key, result, context_id=context_id))


class TracedEvaluator:
    """Answers as the wrapped `FlagEvaluator` does (it calls it), and records each answer as an event.

    Only the answering methods are wrapped; everything else (`update`, `explain`, `version`, ...) is
    the evaluator's own, through `.evaluator`.
    """

    def __init__(self, evaluator: FlagEvaluator) -> None:
        if not isinstance(evaluator, FlagEvaluator):
            raise TypeError(f"evaluator must be a FlagEvaluator, got {type(evaluator).__name__}")
        self.evaluator = evaluator

    def evaluate(self, key: str, ctx: EvalContext | dict[str, Any]) -> EvalResult:
        result = self.evaluator.evaluate(key, ctx)
        record_evaluation(key, result, context_id=_user_id(ctx))
        return result

    def is_enabled(self, key: str, ctx: EvalContext | dict[str, Any], default: bool = False) -> bool:
        result = self.evaluate(key, ctx)
        return default if result.reason == "not_found" else result.enabled

    def get_variant(self, key: str, ctx: EvalContext | dict[str, Any]) -> str:
        return self.evaluate(key, ctx).variant

    def get_value(self, key: str, ctx: EvalContext | dict[str, Any], default: Any = None) -> Any:
        value = self.evaluate(key, ctx).value
        return default if value is None else value


def _user_id(ctx: EvalContext | dict[str, Any]) -> str | None:
    if isinstance(ctx, EvalContext):
        return ctx.user_id or None
    value = ctx.get("user_id")
    return str(value) if value not in (None, "") else None


class EvaluationEventHook(Hook):
    """An OpenFeature hook that adds a `feature_flag.evaluation` event for every evaluation, errors
    included, to the current span. Works with any provider; with ferroflag's, the event also carries
    ferroflag's own reason."""

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        provider = getattr(hook_context.provider_metadata, "name", None) or "unknown"
        reason = getattr(details.reason, "value", details.reason)
        attributes: dict[str, AttributeValue] = {
            "feature_flag.key": details.flag_key,
            "feature_flag.provider.name": provider,
            "feature_flag.result.reason": str(reason or "unknown").lower(),
        }
        if details.variant:
            attributes["feature_flag.result.variant"] = details.variant
        targeting_key = hook_context.evaluation_context.targeting_key
        if targeting_key:
            attributes["feature_flag.context.id"] = targeting_key
        if details.error_code is not None:
            code = getattr(details.error_code, "value", details.error_code)
            attributes["error.type"] = str(code).lower()
        own = details.flag_metadata.get(REASON_METADATA_KEY)
        if isinstance(own, str):
            attributes["ferroflag.reason"] = own
        span.add_event(EVENT_NAME, attributes)
