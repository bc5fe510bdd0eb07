"""Views showing each part of ferroflag's Django integration."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.generic import TemplateView
from ferroflag.django import sync_status
from ferroflag.django.decorators import FlagRequiredMixin, flag_required
from ferroflag.django.middleware import FlagHttpRequest


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


def healthz(request: HttpRequest) -> JsonResponse:
    status = sync_status()
    return JsonResponse({"flags": status.to_dict() if status is not None else "inline"})
