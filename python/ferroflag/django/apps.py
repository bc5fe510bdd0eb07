"""The app config: `"ferroflag.django"` in `INSTALLED_APPS` (label `ferroflag`)."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed

__all__ = ["FerroflagConfig"]


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    from ferroflag.django import _reset
    from ferroflag.django.conf import SETTING

    if setting == SETTING:
        _reset()


class FerroflagConfig(AppConfig):
    name = "ferroflag.django"
    label = "ferroflag"
    default_auto_field = "django.db.models.BigAutoField"  # fixed here, so the migrations do not depend on the project
    verbose_name = "ferroflag feature flags"

    def ready(self) -> None:
        """Registers the system checks and the settings hook, and validates `FERROFLAG` (raising
        `ImproperlyConfigured` with the checks' errors). Starts nothing: the sync starts on the
        first use in each process (see `ferroflag.django`), so calling this again, in the autoreloader's
        parent or in a `--preload` master, starts no thread."""
        from ferroflag.django import (
            checks,  # noqa: F401  (registers the checks on import)
            conf,
        )

        setting_changed.connect(_on_setting_changed, dispatch_uid="ferroflag.django.setting_changed")
        # A wrong FERROFLAG stops the process here, at start-up, with the same messages as `manage.py check`,
        # rather than as a 500 on every request (the admin's too). Validating starts nothing.
        conf.load()
