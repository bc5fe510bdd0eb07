"""OpenTelemetry `feature_flag.evaluation` events, through OpenFeature hooks and the direct API, checked
on a real OpenTelemetry SDK tracer with an in-memory exporter."""

from __future__ import annotations

import pytest
from ferroflag import EvalContext, FlagEvaluator
from ferroflag.openfeature import FerroflagProvider
from ferroflag.otel import EVENT_NAME, EvaluationEventHook, TracedEvaluator
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

FLAGS = [
    {
        "key": "pro-only",
        "enabled": True,
        "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}], "variant": "on"}],
    },
    {"key": "split", "enabled": True, "percentage": 100, "variants": {"a": 1, "b": 1}},
    {"key": "off", "enabled": False, "off_variant": "none"},
]


@pytest.fixture
def tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def events(exporter):
    (span,) = exporter.get_finished_spans()
    return [dict(e.attributes) for e in span.events if e.name == EVENT_NAME]


def test_direct_api_answers_as_the_evaluator_and_records_each_answer(tracer):
    tracer, exporter = tracer
    evaluator = FlagEvaluator(FLAGS)
    flags = TracedEvaluator(evaluator)
    ctx = EvalContext("ana", plan="pro")
    with tracer.start_as_current_span("request"):
        assert flags.is_enabled("pro-only", ctx) is evaluator.is_enabled("pro-only", ctx) is True
        assert flags.get_variant("split", ctx) == evaluator.get_variant("split", ctx)
        assert flags.evaluate("off", {"user_id": "bob"}) == evaluator.evaluate("off", {"user_id": "bob"})
        assert flags.is_enabled("missing", ctx, default=True) is True
    assert events(exporter) == [
        {
            "feature_flag.key": "pro-only",
            "feature_flag.provider.name": "ferroflag",
            "feature_flag.result.reason": "targeting_match",
            "ferroflag.reason": "rule_match",
            "feature_flag.result.variant": "on",
            "feature_flag.context.id": "ana",
        },
        {
            "feature_flag.key": "split",
            "feature_flag.provider.name": "ferroflag",
            "feature_flag.result.reason": "default",
            "ferroflag.reason": "default",
            "feature_flag.result.variant": evaluator.get_variant("split", ctx),
            "feature_flag.context.id": "ana",
        },
        {
            "feature_flag.key": "off",
            "feature_flag.provider.name": "ferroflag",
            "feature_flag.result.reason": "disabled",
            "ferroflag.reason": "disabled",
            "feature_flag.result.variant": "none",
            "feature_flag.context.id": "bob",
        },
        {
            "feature_flag.key": "missing",
            "feature_flag.provider.name": "ferroflag",
            "feature_flag.result.reason": "error",
            "ferroflag.reason": "not_found",
            "feature_flag.context.id": "ana",
            "error.type": "flag_not_found",
        },
    ]


def test_nothing_is_recorded_without_a_recording_span():
    flags = TracedEvaluator(FlagEvaluator(FLAGS))
    assert flags.is_enabled("pro-only", EvalContext("ana", plan="pro")) is True  # no span, no error


def test_openfeature_hook_records_every_evaluation_errors_included(tracer):
    tracer, exporter = tracer
    api.set_provider_and_wait(FerroflagProvider(FlagEvaluator(FLAGS)), domain="otel")
    client = api.get_client("otel")
    client.add_hooks([EvaluationEventHook()])
    with tracer.start_as_current_span("request"):
        assert client.get_boolean_value("pro-only", False, EvaluationContext("ana", {"plan": "pro"})) is True
        assert client.get_boolean_value("missing", False, EvaluationContext("ana")) is False
    recorded = events(exporter)
    assert recorded[0] == {
        "feature_flag.key": "pro-only",
        "feature_flag.provider.name": "ferroflag",
        "feature_flag.result.reason": "targeting_match",
        "feature_flag.result.variant": "on",
        "feature_flag.context.id": "ana",
        "ferroflag.reason": "rule_match",
    }
    assert recorded[1]["feature_flag.key"] == "missing"
    assert recorded[1]["feature_flag.result.reason"] == "error"
    assert recorded[1]["error.type"] == "flag_not_found"


def test_a_wrong_evaluator_is_a_type_error():
    with pytest.raises(TypeError, match="FlagEvaluator"):
        TracedEvaluator("not an evaluator")
