"""Reading and changing the flags of the database source: the one path every write takes.

The admin, the management commands and your own code change flags through these functions. Each one,
in one transaction:

1. locks the revision row (so concurrent changes apply one after the other),
2. builds the whole format-2 document as it would be after the change and hands it to the engine's
   parser (`FlagEvaluator.update_json`, the same validator every flag file goes through): a change it
   rejects raises `InvalidChange` and nothing is written,
3. writes the row, records a `FlagChange` (who, what, before and after) and bumps `Revision.number`.

After the commit, the process that saved reloads at once; the others see the new revision at their
next poll (`INTERVAL`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import F, Max

from ferroflag import ConfigError, FlagEvaluator
from ferroflag.django.models import COLUMN_FIELDS, Flag, FlagChange, Revision, Segment

__all__ = [
    "InvalidChange",
    "Snapshot",
    "delete_flag",
    "delete_segment",
    "export_document",
    "import_document",
    "read_snapshot",
    "revision",
    "save_flag",
    "save_segment",
    "set_flag_fields",
    "validate_document",
    "warnings_about",
]

_REVISION_ID = 1


class InvalidChange(ValueError):
    """The engine rejected the document the change would make; nothing was saved.

    Attributes:
        message: What is wrong (the engine's own `ConfigError.message`, or a problem with the request).
        path: Where, relative to the flag or segment changed when the problem is inside it
            (`rules[0].priority`), else from the document root (`flags[3].rules[0]`); "" for the whole.
        error: The engine's `ConfigError`, when it was the engine that refused.
    """

    def __init__(self, message: str, path: str = "", error: ConfigError | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path
        self.error = error


@dataclass(frozen=True)
class Snapshot:
    """The document in the database at one revision."""

    revision: int
    document: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.document, ensure_ascii=False, allow_nan=False)


def _document(
    flags: list[dict[str, Any]], segments: list[dict[str, Any]], metadata: Mapping[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": 2}
    if metadata:
        doc["metadata"] = dict(metadata)
    if segments:
        doc["segments"] = segments
    doc["flags"] = flags
    return doc


def revision(using: str = DEFAULT_DB_ALIAS) -> int:
    """`Revision.number` now: one primary-key read (what every process polls). 0 before any change."""
    number: int | None = Revision.objects.using(using).filter(pk=_REVISION_ID).values_list("number", flat=True).first()
    return int(number or 0)


def read_snapshot(using: str = DEFAULT_DB_ALIAS) -> Snapshot:
    """The document and the revision it is at."""
    # The number is read before the rows: under READ COMMITTED the rows are then at least that new, so a
    # change committed in between is seen again at the next poll (a number read after the rows could be
    # newer than them, and that change would never be loaded).
    with transaction.atomic(using=using):
        rev = Revision.objects.using(using).filter(pk=_REVISION_ID).first()
        flags = [f.to_document() for f in Flag.objects.using(using).all()]
        segments = [s.to_document() for s in Segment.objects.using(using).all()]
    return Snapshot(rev.number if rev else 0, _document(flags, segments, rev.metadata if rev else {}))


def export_document(using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """The database's flags as a format-2 document (what `ferroflag_flags export` writes)."""
    return read_snapshot(using).document


def validate_document(document: Mapping[str, Any]) -> FlagEvaluator:
    """Parses `document` with the engine, as a flag file would be.

    Returns:
        An evaluator holding it (its `warnings` are the document's warnings).

    Raises:
        InvalidChange: The engine rejected it (`.error` is the `ConfigError`), or it has no JSON form.
    """
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidChange(f"not JSON: {exc}") from exc
    evaluator = FlagEvaluator()
    try:
        evaluator.update_json(text)
    except ConfigError as exc:
        raise InvalidChange(exc.message, exc.path, exc) from exc
    return evaluator


def warnings_about(kind: str, key: str, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The load warnings (docs/spec.md §6) the database's document has about flag or segment `key`, as
    `path: message` lines with the path relative to it: what still loads but deserves a look (an unknown
    operator, a prerequisite naming no flag, weights summing to 0)."""
    document = export_document(using)
    items = document.get("flags" if kind == FlagChange.Kind.FLAG else "segments", [])
    index = next((i for i, item in enumerate(items) if item.get("key") == key), None)
    if index is None:
        return []
    prefix = f"{'flags' if kind == FlagChange.Kind.FLAG else 'segments'}[{index}]"
    lines = []
    for warning in validate_document(document).warnings:
        if warning.path == prefix or warning.path.startswith((prefix + ".", prefix + "[")):
            where = warning.path[len(prefix) :].lstrip(".")
            lines.append(f"{where}: {warning.message}" if where else warning.message)
    return lines


def _relative(exc: InvalidChange, prefix: str) -> InvalidChange:
    """The error with its path relative to `prefix` (e.g. `flags[3]`) when it lies inside it."""
    path = exc.path
    if path == prefix or path.startswith((prefix + ".", prefix + "[")):
        rest = path[len(prefix) :].lstrip(".")
        return InvalidChange(exc.message, rest, exc.error)
    return exc


@contextmanager
def _locked(using: str) -> Iterator[Revision]:
    """A transaction holding the revision row: one change at a time, everywhere."""
    with transaction.atomic(using=using):
        Revision.objects.using(using).get_or_create(pk=_REVISION_ID)
        yield Revision.objects.using(using).select_for_update().get(pk=_REVISION_ID)


def _bump(rev: Revision, using: str) -> int:
    Revision.objects.using(using).filter(pk=rev.pk).update(number=F("number") + 1)
    rev.refresh_from_db(using=using, fields=["number", "metadata"])
    number = rev.number
    transaction.on_commit(lambda: _changed(using), using=using)
    return number


def _changed(using: str) -> None:
    from ferroflag.django import _database_changed  # the runtime imports this module; import late

    _database_changed(using)


def _record(
    *,
    using: str,
    user: Any,
    kind: str,
    key: str,
    action: str,
    before: Any,
    after: Any,
    number: int,
    comment: str,
) -> None:
    if isinstance(user, str):  # a name only: a management command's `--by`, a script
        FlagChange.objects.using(using).create(
            username=user[:150], kind=kind, key=key, action=action, before=before, after=after, revision=number,
            comment=comment[:200],
        )  # fmt: skip
        return
    real_user = user if user is not None and getattr(user, "is_authenticated", False) else None
    # Users kept in another database than the flags cannot be referred to by key: the name is kept alone.
    same_db = real_user is not None and getattr(getattr(real_user, "_state", None), "db", None) == using
    FlagChange.objects.using(using).create(
        user=real_user if same_db else None,
        username=real_user.get_username() if real_user is not None else "",
        kind=kind,
        key=key,
        action=action,
        before=before,
        after=after,
        revision=number,
        comment=comment[:200],
    )


def _flag_row_fields(definition: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    key = definition.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidChange(f"a flag needs a key (a non-empty str), got {key!r}", "key")
    return key, dict(definition)


def _split_flag(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The model fields for a wire-form flag the engine has accepted."""
    percentage = definition.get("percentage")
    return {
        "enabled": definition.get("enabled") is True,
        "percentage": float(percentage) if isinstance(percentage, int | float) else None,
        "definition": {k: v for k, v in definition.items() if k not in COLUMN_FIELDS},
    }


_KEY_LIMIT = 200  # the key columns' max_length


def _check_key_length(kind: str, key: str, path: str = "key") -> None:
    if len(key) > _KEY_LIMIT:
        raise InvalidChange(f"a {kind} key in the database is at most {_KEY_LIMIT} characters, got {len(key)}", path)


def _check_keys(kind: str, key: str, original: str | None, existing: set[str]) -> None:
    _check_key_length(kind, key)
    if key != original and key in existing:
        raise InvalidChange(f"a {kind} with key {key!r} already exists", "key")
    if not re.fullmatch(r"\S(.*\S)?", key, flags=re.DOTALL):
        raise InvalidChange(f"a {kind} key must not start or end with white space, got {key!r}", "key")


def save_flag(
    definition: Mapping[str, Any],
    *,
    original_key: str | None = None,
    user: Any = None,
    using: str = DEFAULT_DB_ALIAS,
    comment: str = "",
    dry_run: bool = False,
) -> Flag | None:
    """Creates or replaces a flag from its wire form (docs/spec.md §1).

    Arguments:
        definition: The whole flag, e.g. `{"key": "beta", "enabled": True, "percentage": 10}`.
        original_key: The key of the row to replace when the key itself changes; defaults to
            `definition["key"]`.
        user: Who made the change (kept in the history): a Django user, a name, or None.
        using: The database alias.
        comment: How the change was made (kept in the history).
        dry_run: Validate only (the admin form's `clean()`): nothing is written and None is returned.

    Returns:
        The saved row.

    Raises:
        InvalidChange: The engine rejects the resulting document (the path is relative to the flag when
            the problem is inside it), or the key is taken.
    """
    key, new = _flag_row_fields(definition)
    return _save(
        Flag,
        FlagChange.Kind.FLAG,
        key,
        new,
        original_key=original_key,
        user=user,
        using=using,
        comment=comment,
        dry_run=dry_run,
    )


def set_flag_fields(
    key: str,
    *,
    user: Any = None,
    using: str = DEFAULT_DB_ALIAS,
    comment: str = "",
    **fields: Any,
) -> Flag:
    """Changes some fields of an existing flag, e.g. `set_flag_fields("beta", enabled=True)`.

    Raises:
        InvalidChange: No such flag, or the engine rejects the result.
    """
    row = Flag.objects.using(using).filter(key=key).first()
    if row is None:
        raise InvalidChange(f"no flag {key!r} in the database", "key")
    definition = row.to_document()
    for field, value in fields.items():
        if value is None:
            definition.pop(field, None)
        else:
            definition[field] = value
    saved = save_flag(definition, original_key=key, user=user, using=using, comment=comment)
    assert saved is not None  # not a dry run
    return saved


def delete_flag(key: str, *, user: Any = None, using: str = DEFAULT_DB_ALIAS, comment: str = "") -> None:
    """Deletes a flag (a prerequisite that names it then fails, with a load warning, as in a file).

    Raises:
        InvalidChange: No such flag.
    """
    _delete(Flag, FlagChange.Kind.FLAG, key, user=user, using=using, comment=comment)


def save_segment(
    definition: Mapping[str, Any],
    *,
    original_key: str | None = None,
    user: Any = None,
    using: str = DEFAULT_DB_ALIAS,
    comment: str = "",
    dry_run: bool = False,
) -> Segment | None:
    """Creates or replaces a segment from its wire form (`{"key": ..., "rules": [...]}`); as `save_flag()`."""
    key = definition.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidChange(f"a segment needs a key (a non-empty str), got {key!r}", "key")
    return _save(
        Segment,
        FlagChange.Kind.SEGMENT,
        key,
        dict(definition),
        original_key=original_key,
        user=user,
        using=using,
        comment=comment,
        dry_run=dry_run,
    )


_Row = TypeVar("_Row", Flag, Segment)


def _save(
    model: type[_Row],
    kind: FlagChange.Kind,
    key: str,
    new: dict[str, Any],
    *,
    original_key: str | None,
    user: Any,
    using: str,
    comment: str,
    dry_run: bool,
) -> _Row | None:
    """`save_flag()` and `save_segment()`: the document with the change is validated whole by the engine,
    then the row is written and the change recorded, under the revision lock."""
    is_flag = model is Flag
    word = "flag" if is_flag else "segment"
    original = original_key if original_key is not None else key
    with _locked(using) as rev:
        rows = list(model.objects.using(using).all())
        current = next((row for row in rows if row.key == original), None)
        _check_keys(word, key, current.key if current else None, {row.key for row in rows})
        items = [row.to_document() for row in rows]
        if current is not None:
            index = rows.index(current)
            items[index] = new
        else:
            index = len(items)
            items.append(new)
        others = [row.to_document() for row in (Segment if is_flag else Flag).objects.using(using).all()]
        flags, segments = (items, others) if is_flag else (others, items)
        try:
            validate_document(_document(flags, segments, rev.metadata))
        except InvalidChange as exc:
            raise _relative(exc, f"{word}s[{index}]") from exc.error
        if dry_run:
            transaction.set_rollback(True, using=using)
            return None
        before = current.to_document() if current is not None else None
        row = current or model(position=_next_position(model, using))
        row.key = key
        if isinstance(row, Flag):
            for field, value in _split_flag(new).items():
                setattr(row, field, value)
        else:
            row.definition = {k: v for k, v in new.items() if k != "key"}
        row.save(using=using)
        after = row.to_document()
        if before != after:
            number = _bump(rev, using)
            _record(
                using=using,
                user=user,
                kind=kind,
                key=key,
                action=FlagChange.Action.UPDATE if before is not None else FlagChange.Action.CREATE,
                before=before,
                after=after,
                number=number,
                comment=comment,
            )
        return row


def delete_segment(key: str, *, user: Any = None, using: str = DEFAULT_DB_ALIAS, comment: str = "") -> None:
    """Deletes a segment (conditions naming it then match no one, with a load warning)."""
    _delete(Segment, FlagChange.Kind.SEGMENT, key, user=user, using=using, comment=comment)


def _delete(
    model: type[Flag | Segment], kind: FlagChange.Kind, key: str, *, user: Any, using: str, comment: str
) -> None:
    """`delete_flag()` and `delete_segment()`: the row goes, and the change is recorded with its before."""
    with _locked(using) as rev:
        row = model.objects.using(using).filter(key=key).first()
        if row is None:
            raise InvalidChange(f"no {'flag' if model is Flag else 'segment'} {key!r} in the database", "key")
        before = row.to_document()
        row.delete()
        number = _bump(rev, using)
        _record(
            using=using,
            user=user,
            kind=kind,
            key=key,
            action=FlagChange.Action.DELETE,
            before=before,
            after=None,
            number=number,
            comment=comment,
        )


def import_document(
    document: Mapping[str, Any] | list[Any],
    *,
    user: Any = None,
    using: str = DEFAULT_DB_ALIAS,
    comment: str = "import",
) -> dict[str, int]:
    """Replaces every flag, segment and the metadata with a document's (what `ferroflag_flags import` does).

    The document is validated whole first; flags and segments keep its order, and each one that changes
    gets its own history entry.

    Returns:
        Counts: `{"created": ..., "updated": ..., "deleted": ..., "unchanged": ...}`.

    Raises:
        InvalidChange: The engine rejects the document (the path is from its root).
    """
    doc: Mapping[str, Any] = {"flags": document} if isinstance(document, list) else document
    validate_document(doc)
    for plural, kind in (("flags", "flag"), ("segments", "segment")):
        for i, item in enumerate(doc.get(plural) or []):
            _check_key_length(kind, item["key"], f"{plural}[{i}].key")
    flags = [dict(f) for f in doc.get("flags") or []]
    segments = [dict(s) for s in doc.get("segments") or []]
    metadata = dict(doc.get("metadata") or {})
    counts = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0}
    with _locked(using) as rev:
        changes: list[tuple[FlagChange.Kind, str, FlagChange.Action, Any, Any]] = []
        for model, kind, items in ((Segment, FlagChange.Kind.SEGMENT, segments), (Flag, FlagChange.Kind.FLAG, flags)):
            existing = {row.key: row for row in model.objects.using(using).all()}
            # A later item with the same key replaces an earlier one in place, as the engine does.
            wanted: dict[str, dict[str, Any]] = {}
            for item in items:
                wanted[item["key"]] = item
            for position, (key, item) in enumerate(wanted.items()):
                row = existing.pop(key, None)
                before = row.to_document() if row is not None else None
                if row is None:
                    row = model(key=key)
                if model is Flag:
                    for field, value in _split_flag(item).items():
                        setattr(row, field, value)
                else:
                    row.definition = {k: v for k, v in item.items() if k != "key"}
                row.position = position
                row.save(using=using)
                after = row.to_document()
                if before == after:
                    counts["unchanged"] += 1
                    continue
                counts["created" if before is None else "updated"] += 1
                action = FlagChange.Action.CREATE if before is None else FlagChange.Action.UPDATE
                changes.append((kind, key, action, before, after))
            for key, row in existing.items():
                changes.append((kind, key, FlagChange.Action.DELETE, row.to_document(), None))
                row.delete()
                counts["deleted"] += 1
        if rev.metadata != metadata:
            changes.append((FlagChange.Kind.METADATA, "", FlagChange.Action.UPDATE, rev.metadata, metadata))
            Revision.objects.using(using).filter(pk=rev.pk).update(metadata=metadata)
        if changes:
            number = _bump(rev, using)
            for kind, key, action, before, after in changes:
                _record(
                    using=using,
                    user=user,
                    kind=kind,
                    key=key,
                    action=action,
                    before=before,
                    after=after,
                    number=number,
                    comment=comment,
                )
    return counts


def _next_position(model: type[Flag | Segment], using: str) -> int:
    top = model.objects.using(using).aggregate(top=Max("position"))["top"]
    return 0 if top is None else int(top) + 1
