from __future__ import annotations

from django.contrib import admin
from django.urls import path

from django_site import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.home),
    path("checkout/", views.checkout),
    path("search/", views.search),
    path("export/", views.ExportView.as_view()),
    path("healthz", views.healthz),
    path("metrics", views.metrics),
    path("exposures", views.exposures),
]

views.observe()  # exposures and counters from the first request on
