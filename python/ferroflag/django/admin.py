"""The Django admin for the database source: flags, segments, and their history.

Every save goes through `ferroflag.django.store`: the form shows the engine's own message (the parser
every flag file goes through) and saves nothing the engine rejects; each change is recorded, with the
definition before and after, in "Flag changes".
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from ferroflag.django import models, store
from ferroflag.django.models import COLUMN_FIELDS, Flag, FlagChange, Segment

__all__ = ["FlagAdmin", "FlagChangeAdmin", "SegmentAdmin"]


def _using() -> str:
    """The database the flags are served from (`FERROFLAG["DATABASE"]`), else the default one."""
    raw = getattr(settings, "FERROFLAG", None)
    alias = raw.get("DATABASE") if isinstance(raw, Mapping) else None
    return alias if isinstance(alias, str) else DEFAULT_DB_ALIAS


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


class PrettyJSONField(forms.JSONField):
    """A JSON text area, indented so a rule reads (and diffs) one field a line."""

    widget = forms.Textarea(attrs={"rows": 16, "cols": 90, "style": "font-family: monospace"})

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return str(value)
        return _pretty(value)


def _add_invalid(form: forms.BaseForm, exc: store.InvalidChange, json_field: str) -> None:
    """The engine's message on the field it is about: `key`/`enabled`/`percentage`, else the JSON."""
    head = exc.path.split(".", 1)[0].split("[", 1)[0]
    if head in form.fields and head != json_field and head in COLUMN_FIELDS:
        form.add_error(head, exc.message)
    else:
        where = f"{exc.path}: " if exc.path else ""
        form.add_error(json_field if json_field in form.fields else None, f"{where}{exc.message}")


class _FlagFormMixin(forms.ModelForm):  # type: ignore[type-arg]
    """The engine's check on the whole document, with this flag as the form has it."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        instance = self.instance
        definition = cleaned.get("definition", instance.definition)
        if not isinstance(definition, dict):
            self.add_error("definition", 'The definition must be a JSON object, e.g. {"rules": []}.')
            return cleaned
        for field in COLUMN_FIELDS:
            if field in definition:
                self.add_error("definition", f"Set {field!r} in its own field, not in the JSON.")
        if self.errors:
            return cleaned
        flag = Flag(
            key=cleaned.get("key", instance.key),
            enabled=cleaned.get("enabled", instance.enabled),
            percentage=cleaned.get("percentage", instance.percentage),
            definition=definition,
        )
        original = Flag.objects.using(_using()).filter(pk=instance.pk).values_list("key", flat=True).first()
        try:
            store.save_flag(flag.to_document(), original_key=original, using=_using(), dry_run=True)
        except store.InvalidChange as exc:
            _add_invalid(self, exc, "definition")
        return cleaned


class FlagForm(_FlagFormMixin):
    definition = PrettyJSONField(
        required=False,
        initial=dict,
        help_text=models.FLAG_DEFINITION_HELP,
    )

    class Meta:
        model = Flag
        fields = ("key", "enabled", "percentage", "definition")

    def clean_definition(self) -> Any:
        value = self.cleaned_data.get("definition")
        return {} if value in (None, "") else value


class FlagListForm(_FlagFormMixin):
    """The changelist's in-place `enabled`/`percentage` edit: checked by the engine like the change form."""

    class Meta:
        model = Flag
        fields = ("enabled", "percentage")


def _history_table(kind: str, key: str) -> SafeString:
    changes = FlagChange.objects.using(_using()).filter(kind=kind, key=key)[:10]
    url = reverse("admin:ferroflag_flagchange_changelist") + "?" + urlencode({"kind": kind, "key": key})
    rows = format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                reverse("admin:ferroflag_flagchange_change", args=[c.pk]),
                c.at.strftime("%Y-%m-%d %H:%M:%S %Z"),
                c.username or "(script)",
                c.action,
                c.comment,
            )
            for c in changes
        ),
    )
    if not changes:
        return format_html("<p>No changes recorded yet.</p>")
    return format_html(
        "<table><tr><th>when</th><th>who</th><th>action</th><th>how</th></tr>{}</table>"
        '<p><a href="{}">All changes</a></p>',
        rows,
        url,
    )


def _warn(request: HttpRequest, kind: str, key: str) -> None:
    """Saved, but the engine has remarks (it loads, yet e.g. an unknown operator never matches): say so."""
    lines = store.warnings_about(kind, key, using=_using())
    for line in lines[:5]:
        messages.warning(request, f"Saved, with a warning: {key}: {line}")
    if len(lines) > 5:
        messages.warning(
            request,
            f"Saved, with {len(lines) - 5} more warnings about {key} "
            "(manage.py ferroflag_flags export f.json; ferroflag validate f.json)",
        )


class _SourceNotice:
    """Says so on the changelist when the site does not serve flags from this database."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        raw = getattr(settings, "FERROFLAG", None)
        if not (isinstance(raw, Mapping) and raw.get("DATABASE")):
            messages.warning(
                request,
                "FERROFLAG has no DATABASE source: this site serves its flags from elsewhere, "
                "and changes made here are not served.",
            )
        response: HttpResponse = super().changelist_view(request, extra_context)  # type: ignore[misc]
        return response


@admin.register(Flag)
class FlagAdmin(_SourceNotice, admin.ModelAdmin):  # type: ignore[type-arg]
    form = FlagForm
    list_display = ("key", "enabled", "percentage", "summary", "updated_at")
    list_editable = ("enabled", "percentage")
    list_filter = ("enabled",)
    search_fields = ("key",)
    readonly_fields = ("history",)
    actions = ("enable_flags", "disable_flags")
    fieldsets = (
        (None, {"fields": ("key", "enabled", "percentage")}),
        ("Targeting, variants and values", {"fields": ("definition",)}),
        ("History", {"fields": ("history",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return super().get_queryset(request).using(_using())

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:  # type: ignore[type-arg]
        kwargs.setdefault("form", FlagListForm)
        form: type[forms.ModelForm] = super().get_changelist_form(request, **kwargs)  # type: ignore[type-arg]
        return form

    @admin.display(description="rules · variants · prerequisites")
    def summary(self, obj: Flag) -> str:
        d = obj.definition or {}
        parts = []
        for name in ("rules", "variants", "prerequisites"):
            if d.get(name):
                parts.append(f"{len(d[name])} {name}")
        return ", ".join(parts) or "-"

    @admin.display(description="changes")
    def history(self, obj: Flag) -> SafeString:
        if obj.pk is None:
            return format_html("<p>-</p>")
        return _history_table(FlagChange.Kind.FLAG, obj.key)

    def save_model(self, request: HttpRequest, obj: Flag, form: Any, change: bool) -> None:
        original = Flag.objects.using(_using()).filter(pk=obj.pk).values_list("key", flat=True).first()
        try:
            saved = store.save_flag(
                obj.to_document(), original_key=original, user=request.user, using=_using(), comment="admin"
            )
        except store.InvalidChange as exc:  # changed by someone else since the form was checked
            messages.error(request, f"Not saved: {exc}")
            return
        assert saved is not None
        obj.pk, obj.position, obj.updated_at = saved.pk, saved.position, saved.updated_at
        _warn(request, FlagChange.Kind.FLAG, saved.key)

    def delete_model(self, request: HttpRequest, obj: Flag) -> None:
        store.delete_flag(obj.key, user=request.user, using=_using(), comment="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        for key in list(queryset.values_list("key", flat=True)):
            store.delete_flag(key, user=request.user, using=_using(), comment="admin")

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Flag], enabled: bool) -> None:
        keys = list(queryset.values_list("key", flat=True))
        for key in keys:
            store.set_flag_fields(key, enabled=enabled, user=request.user, using=_using(), comment="admin action")
        self.message_user(request, f"{'Enabled' if enabled else 'Disabled'} {len(keys)} flag(s): {', '.join(keys)}.")

    @admin.action(description="Enable the selected flags")
    def enable_flags(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected flags")
    def disable_flags(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self._set_enabled(request, queryset, False)


class SegmentForm(forms.ModelForm):  # type: ignore[type-arg]
    definition = PrettyJSONField(required=False, initial=dict, help_text=models.SEGMENT_DEFINITION_HELP)

    class Meta:
        model = Segment
        fields = ("key", "definition")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        definition = cleaned.get("definition") or {}
        if not isinstance(definition, dict):
            self.add_error("definition", 'The definition must be a JSON object, e.g. {"rules": []}.')
            return cleaned
        cleaned["definition"] = definition
        if "key" in definition:
            self.add_error("definition", "Set 'key' in its own field, not in the JSON.")
            return cleaned
        original = Segment.objects.using(_using()).filter(pk=self.instance.pk).values_list("key", flat=True).first()
        try:
            store.save_segment(
                {"key": cleaned["key"], **definition}, original_key=original, using=_using(), dry_run=True
            )
        except store.InvalidChange as exc:
            _add_invalid(self, exc, "definition")
        return cleaned


@admin.register(Segment)
class SegmentAdmin(_SourceNotice, admin.ModelAdmin):  # type: ignore[type-arg]
    form = SegmentForm
    list_display = ("key", "updated_at")
    search_fields = ("key",)
    readonly_fields = ("history",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Segment]:
        return super().get_queryset(request).using(_using())

    @admin.display(description="changes")
    def history(self, obj: Segment) -> SafeString:
        if obj.pk is None:
            return format_html("<p>-</p>")
        return _history_table(FlagChange.Kind.SEGMENT, obj.key)

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        original = Segment.objects.using(_using()).filter(pk=obj.pk).values_list("key", flat=True).first()
        try:
            saved = store.save_segment(
                obj.to_document(), original_key=original, user=request.user, using=_using(), comment="admin"
            )
        except store.InvalidChange as exc:
            messages.error(request, f"Not saved: {exc}")
            return
        assert saved is not None
        obj.pk, obj.position, obj.updated_at = saved.pk, saved.position, saved.updated_at
        _warn(request, FlagChange.Kind.SEGMENT, saved.key)

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        store.delete_segment(obj.key, user=request.user, using=_using(), comment="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for key in list(queryset.values_list("key", flat=True)):
            store.delete_segment(key, user=request.user, using=_using(), comment="admin")


@admin.register(FlagChange)
class FlagChangeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: the history is written by `ferroflag.django.store` alone."""

    list_display = ("at", "username", "action", "kind", "key", "revision", "comment")
    list_filter = ("kind", "action")
    search_fields = ("key", "username")
    fields = ("at", "username", "action", "kind", "key", "revision", "comment", "diff", "before_json", "after_json")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagChange]:
        return super().get_queryset(request).using(_using())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="before")
    def before_json(self, obj: FlagChange) -> SafeString:
        return format_html("<pre>{}</pre>", "(none)" if obj.before is None else _pretty(obj.before))

    @admin.display(description="after")
    def after_json(self, obj: FlagChange) -> SafeString:
        return format_html("<pre>{}</pre>", "(none)" if obj.after is None else _pretty(obj.after))

    @admin.display(description="diff")
    def diff(self, obj: FlagChange) -> SafeString:
        before = [] if obj.before is None else _pretty(obj.before).splitlines()
        after = [] if obj.after is None else _pretty(obj.after).splitlines()
        lines = difflib.unified_diff(before, after, "before", "after", lineterm="", n=2)
        return format_html("<pre>{}</pre>", "\n".join(lines) or "(no difference)")
