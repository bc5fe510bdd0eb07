"""Prometheus metrics for an evaluator and its flag source (install `ferroflag[metrics]`).

    from prometheus_client import make_asgi_app
    from ferroflag import metrics

    metrics.register(evaluator, source=sync_client)   # counts from now on; added to the default registry
    app.mount("/metrics", make_asgi_app())

What a scrape reads (all computed at scrape time from native state; nothing is kept in Python):

- `ferroflag_evaluations_total{flag, variant, reason}`: evaluations counted since `register()`
  (`FlagEvaluator.counters()`);
- `ferroflag_exposures_total{outcome}` (`recorded`, `deduplicated`, `dropped`): exposure events of tracked
  flags, when a sink is attached;
- `ferroflag_flags`, `ferroflag_snapshot_version`: flags in the current snapshot, snapshots loaded so far;
- `ferroflag_source_ready{source}`, `ferroflag_source_stale{source}`: the flag source's state (1 or 0);
- `ferroflag_snapshot_age_seconds{source}`: seconds since the source last confirmed its flags (a new
  document, a 304 or an unchanged file);
- `ferroflag_source_failures_total{source}`, `ferroflag_source_consecutive_failures{source}`: failed polls,
  in all and since the last success.

Counting costs each evaluation one uncontended native lock and a hash (see `benches/bench_events.py`);
without `register()` (or `FlagEvaluator.enable_counters()`) nothing is counted. In a process that forks
(gunicorn), each worker counts its own evaluations; use prometheus_client's multiprocess mode or scrape each
worker, as for any per-process metric.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ferroflag.exposures import _streams

if TYPE_CHECKING:
    from ferroflag import FlagEvaluator
    from ferroflag.sources import FlagSource

# Re-exported for apps that serve /metrics themselves (a Django view, say).
__all__ = ["CONTENT_TYPE_LATEST", "CollectorRegistry", "FerroflagCollector", "generate_latest", "register"]


class FerroflagCollector(Collector):
    """A Prometheus collector reading one evaluator (and optionally its flag source) at scrape time."""

    def __init__(self, evaluator: FlagEvaluator, source: FlagSource | None = None) -> None:
        self.evaluator = evaluator
        self.source = source

    def collect(self) -> Iterator[Metric]:
        evaluations = CounterMetricFamily(
            "ferroflag_evaluations",
            "Flag evaluations by flag, variant and reason.",
            labels=["flag", "variant", "reason"],
        )
        for (flag, variant, reason), count in self.evaluator.counters().items():
            evaluations.add_metric([flag, variant, reason], count)
        yield evaluations

        stream = _streams.get(id(self.evaluator))
        if stream is not None and stream._evaluator is self.evaluator:
            stats = stream.stats()
            exposures = CounterMetricFamily(
                "ferroflag_exposures", "Exposure events of tracked flags by outcome.", labels=["outcome"]
            )
            for outcome in ("recorded", "deduplicated", "dropped"):
                exposures.add_metric([outcome], getattr(stats, outcome))
            yield exposures

        yield GaugeMetricFamily("ferroflag_flags", "Flags in the current snapshot.", value=len(self.evaluator))
        yield GaugeMetricFamily("ferroflag_snapshot_version", "Snapshots loaded so far.", value=self.evaluator.version)
        if self.source is not None:
            yield from _source_metrics(self.source.status())


def _source_metrics(status: Any) -> Iterator[Metric]:
    labels = [str(status.source)]

    def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation, labels=["source"])
        family.add_metric(labels, value)
        return family

    yield gauge("ferroflag_source_ready", "1 once the flag source has applied a snapshot.", float(status.ready))
    yield gauge("ferroflag_source_stale", "1 while the source fails after having been ready.", float(status.stale))
    last_success = getattr(status, "last_success", None)
    if last_success is not None:
        yield gauge(
            "ferroflag_snapshot_age_seconds",
            "Seconds since the source last confirmed its flags.",
            max(0.0, time.time() - float(last_success)),
        )
    failures = CounterMetricFamily("ferroflag_source_failures", "Failed polls of the flag source.", labels=["source"])
    failures.add_metric(labels, float(getattr(status, "failures", status.consecutive_failures)))
    yield failures
    yield gauge(
        "ferroflag_source_consecutive_failures",
        "Failed polls since the last success.",
        float(status.consecutive_failures),
    )


def register(
    evaluator: FlagEvaluator,
    source: FlagSource | None = None,
    *,
    registry: CollectorRegistry = REGISTRY,
) -> FerroflagCollector:
    """Starts counting the evaluator's evaluations and adds its metrics to `registry`.

    Arguments:
        evaluator: The evaluator to count and report.
        source: Its flag source (`FlagSyncClient`, `FlagFileWatcher`, or any `FlagSource`), for the
            source metrics.
        registry: Where to register; prometheus_client's default registry unless given.

    Returns:
        The collector (`registry.unregister(collector)` removes it).
    """
    evaluator.enable_counters()
    collector = FerroflagCollector(evaluator, source)
    registry.register(collector)
    return collector
