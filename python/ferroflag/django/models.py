"""The database source's tables: one row per flag and per segment, a one-row revision, and the history.

A flag row keeps `key`, `enabled` and `percentage` in columns (so the admin can list and edit them in
place) and the rest of its format-2 definition (rules, prerequisites, variants, values, ...) as JSON.
Every change goes through `ferroflag.django.store`, which validates the whole document with the
engine's own parser, writes the rows, records a `FlagChange` and bumps `Revision.number` in one
transaction: other processes poll that one primary-key row and reload only when it moved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models

__all__ = ["Flag", "FlagChange", "Revision", "Segment"]

# Fields a flag row keeps in columns; the JSON `definition` holds everything else.
COLUMN_FIELDS = ("key", "enabled", "percentage")
FLAG_DEFINITION_HELP = (
    "The rest of the format-2 flag (docs/spec.md §1): rules, prerequisites, variants, default_variant, "
    "off_variant, values, bucket_by, metadata."
)
SEGMENT_DEFINITION_HELP = 'The rest of the segment: {"rules": [{"conditions": [...]}]}.'


class Flag(models.Model):
    key: models.CharField[str, str] = models.CharField(max_length=200, unique=True)
    enabled: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    percentage: models.FloatField[float | None, float | None] = models.FloatField(
        null=True, blank=True, help_text="Rollout share in percent (0-100) of the users no rule admitted."
    )
    definition: models.JSONField[Any, Any] = models.JSONField(
        default=dict,
        blank=True,
        help_text=FLAG_DEFINITION_HELP,
    )
    position: models.IntegerField[int, int] = models.IntegerField(
        default=0, help_text="Document order (keys() and exports follow it)."
    )
    updated_at: models.DateTimeField[Any, datetime] = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("position", "id")
        verbose_name = "flag"

    def __str__(self) -> str:
        return str(self.key)

    def to_document(self) -> dict[str, Any]:
        """The flag in wire form (docs/spec.md §1)."""
        flag: dict[str, Any] = {"key": self.key, "enabled": self.enabled}
        if self.percentage is not None:
            flag["percentage"] = _number(self.percentage)
        flag.update((k, v) for k, v in (self.definition or {}).items() if k not in COLUMN_FIELDS)
        return flag


class Segment(models.Model):
    key: models.CharField[str, str] = models.CharField(max_length=200, unique=True)
    definition: models.JSONField[Any, Any] = models.JSONField(
        default=dict, blank=True, help_text=SEGMENT_DEFINITION_HELP
    )
    position: models.IntegerField[int, int] = models.IntegerField(default=0)
    updated_at: models.DateTimeField[Any, datetime] = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("position", "id")
        verbose_name = "segment"

    def __str__(self) -> str:
        return str(self.key)

    def to_document(self) -> dict[str, Any]:
        segment: dict[str, Any] = {"key": self.key}
        segment.update((k, v) for k, v in (self.definition or {}).items() if k != "key")
        return segment


class Revision(models.Model):
    """One row (id 1): bumped by every change, read by every process once per `INTERVAL`."""

    number: models.BigIntegerField[int, int] = models.BigIntegerField(default=0)
    metadata: models.JSONField[Any, Any] = models.JSONField(
        default=dict, blank=True, help_text="The document's metadata (spec §1)."
    )
    updated_at: models.DateTimeField[Any, datetime] = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "revision"

    def __str__(self) -> str:
        return f"revision {self.number}"


class FlagChange(models.Model):
    """Who changed what and when, with the definition before and after (None: did not exist)."""

    class Kind(models.TextChoices):
        FLAG = "flag"
        SEGMENT = "segment"
        METADATA = "metadata"

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"

    at: models.DateTimeField[Any, datetime] = models.DateTimeField(auto_now_add=True, db_index=True)
    user: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username: models.CharField[str, str] = models.CharField(
        max_length=150, blank=True, help_text="Kept when the user is deleted."
    )
    kind: models.CharField[str, str] = models.CharField(max_length=10, choices=Kind.choices)
    key: models.CharField[str, str] = models.CharField(max_length=200, db_index=True)
    action: models.CharField[str, str] = models.CharField(max_length=10, choices=Action.choices)
    before: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    after: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    revision: models.BigIntegerField[int, int] = models.BigIntegerField(help_text="Revision.number after this change.")
    comment: models.CharField[str, str] = models.CharField(
        max_length=200, blank=True, help_text="How: admin, command, import..."
    )

    class Meta:
        ordering = ("-at", "-id")
        verbose_name = "flag change"

    def __str__(self) -> str:
        return f"{self.action} {self.kind} {self.key} by {self.username or 'system'}"


def _number(value: float) -> int | float:
    # 50.0 exports as 50, so a document's `"percentage": 50` survives a round trip as written.
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
