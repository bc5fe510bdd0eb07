"""Views showing each part of ferroflag's Django integration."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.generic import TemplateView
from ferroflag import metrics as flag_metrics
from ferroflag.django import get_evaluator, sync_status
from ferroflag.django.decorators import FlagRequiredMixin, flag_required
from ferroflag.django.middleware import FlagHttpRequest
from ferroflag.exposures import Exposure


def home(request: FlagHttpRequest) -> HttpResponse:
    """The template decides with {% flag %} and {% flag_variant %}; the view reads request.flags."""
    return render(request, "home.html", {"who": request.flag_context})


def old_checkout(request: HttpRequest) -> HttpResponse:
    return HttpResponse("old checkout\n", content_type="text/plain")


@flag_required("new-checkout", fallback=old_checkout)
def checkout(request: FlagHttpRequest) -> HttpResponse:
    variant = request.flags.variant("new-checkout")
    return HttpResponse(f"new checkout, variant {variant}\n", content_type="text/plain")


@flag_required("beta-search")  # 404 unless on: an async view, gated the same way
async def search(request: FlagHttpRequest) -> HttpResponse:
    engine = request.flags.variant("beta-search") or "default"
    return HttpResponse(f"search engine: {engine}\n", content_type="text/plain")


class ExportView(FlagRequiredMixin, TemplateView):
    """A class-based view behind a flag (legacy-export is switched off in flags.json: 404)."""

    flag_key = "legacy-export"
    template_name = "home.html"


# --- exposures and metrics ---------------------------------------------------------------------------
# `dark-mode` is tracked ("metadata": {"track": true} in flags.json): each user it is served to is an
# exposure. The sink keeps the last 100 for /exposures; a real site sends them to its analytics.

_recent: deque[Exposure] = deque(maxlen=100)
_registry = flag_metrics.CollectorRegistry()
_observing = threading.Lock()
_observed = False


class _SiteSource:
    """The site's flag source for the metrics: its status as `ferroflag.django.sync_status()` gives it."""

    def status(self) -> Any:
        return sync_status()


def observe() -> None:
    """Starts exposures and counters on the site's evaluator, once (urls.py calls it at start-up)."""
    global _observed
    with _observing:
        if _observed:
            return
        evaluator = get_evaluator()
        evaluator.on_exposure(_recent.extend, interval=0.5)
        flag_metrics.register(evaluator, _SiteSource() if sync_status() is not None else None, registry=_registry)
        _observed = True


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus: evaluations by flag, variant and reason, exposure counts, the flag source's state."""
    observe()
    return HttpResponse(flag_metrics.generate_latest(_registry), content_type=flag_metrics.CONTENT_TYPE_LATEST)


def exposures(request: HttpRequest) -> JsonResponse:
    """The last exposures the sink received."""
    observe()
    return JsonResponse([exposure._asdict() for exposure in _recent], safe=False)


def healthz(request: HttpRequest) -> JsonResponse:
    status = sync_status()
    return JsonResponse({"flags": status.to_dict() if status is not None else "inline"})
