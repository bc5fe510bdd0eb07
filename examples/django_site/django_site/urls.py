from __future__ import annotations

from django.urls import path

from django_site import views

urlpatterns = [
    path("", views.home),
    path("checkout/", views.checkout),
    path("search/", views.search),
    path("export/", views.ExportView.as_view()),
    path("healthz", views.healthz),
]
