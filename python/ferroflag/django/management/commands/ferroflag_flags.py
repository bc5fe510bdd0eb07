"""`manage.py ferroflag_flags`: list, change, import, export and explain the flags.

    manage.py ferroflag_flags list                      # every flag with its state
    manage.py ferroflag_flags enable beta checkout      # on (database source)
    manage.py ferroflag_flags disable beta
    manage.py ferroflag_flags set-percentage beta 25
    manage.py ferroflag_flags import flags.json         # the file replaces the database's flags
    manage.py ferroflag_flags export flags.json         # and back ('-' or nothing: stdout)
    manage.py ferroflag_flags explain beta --user ann   # why ann gets that answer

`list` and `explain` read the flags the site serves, from whichever source `FERROFLAG` names; the
commands that change flags work on the database source's tables (`FERROFLAG["DATABASE"]`, or
`--database`) through `ferroflag.django.store`, so each change is validated by the engine and
recorded in the history with `--by` (default: the login name running the command).
"""

from __future__ import annotations

import argparse
import getpass
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.http import HttpRequest

from ferroflag import EvalContext, FlagEvaluator
from ferroflag.django import conf, get_evaluator, store
from ferroflag.django.models import Flag


def _configured_database() -> str | None:
    raw = getattr(settings, conf.SETTING, None)
    alias = raw.get("DATABASE") if isinstance(raw, Mapping) else None
    return alias if isinstance(alias, str) else None


class Command(BaseCommand):
    help = "List, enable, disable, import, export and explain ferroflag flags."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        def command(name: str, help: str) -> argparse.ArgumentParser:
            p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
            return p

        def database(p: argparse.ArgumentParser) -> None:
            p.add_argument(
                "--database",
                help="database alias of the ferroflag tables (default: FERROFLAG['DATABASE'], else 'default')",
            )
            p.add_argument("--by", help="who the history records (default: the login name running the command)")

        command("list", "every flag with its state, as the site serves them (--database: the tables')").add_argument(
            "--database", help="list the ferroflag tables of this database instead of the served flags"
        )
        for name, verb in (("enable", "turn on"), ("disable", "turn off")):
            p = command(name, f"{verb} flags (database source)")
            p.add_argument("keys", nargs="+", metavar="KEY")
            database(p)
        p = command("set-percentage", "set a flag's rollout percentage (database source)")
        p.add_argument("key", metavar="KEY")
        p.add_argument("percentage", type=float, metavar="PERCENT")
        database(p)
        p = command("import", "replace the database's flags, segments and metadata with a flag file's")
        p.add_argument("file", metavar="FILE", help="a flag document ('-': stdin)")
        p.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")
        database(p)
        p = command("export", "write the database's flags as a format-2 flag file")
        p.add_argument("file", nargs="?", default="-", metavar="FILE", help="where ('-' or nothing: stdout)")
        p.add_argument("--database", help="database alias (default: FERROFLAG['DATABASE'], else 'default')")
        p = command("explain", "why a user gets the answer they get, as the site serves the flags")
        p.add_argument("key", metavar="KEY")
        who = p.add_mutually_exclusive_group()
        who.add_argument("--user", metavar="USERNAME", help="a user of the site, through the CONTEXT builder")
        who.add_argument("--user-id", metavar="ID", help="a bare context with this user_id (no lookup)")
        p.add_argument("--json", action="store_true", help="the explanation as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        action: str = options["action"]
        handler = getattr(self, "_" + action.replace("-", "_"))
        handler(options)

    # --- helpers ---------------------------------------------------------------------------------

    def _using(self, options: Mapping[str, Any]) -> str:
        return options.get("database") or _configured_database() or DEFAULT_DB_ALIAS

    def _by(self, options: Mapping[str, Any]) -> str:
        by: str | None = options.get("by")
        if by:
            return by
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no login name (a container without a passwd entry)
            return "manage.py"

    def _change(self, options: Mapping[str, Any], key: str, **fields: Any) -> None:
        using = self._using(options)
        try:
            store.set_flag_fields(
                key,
                user=self._by(options),
                using=using,
                comment=f"manage.py ferroflag_flags {options['action']}",
                **fields,
            )
        except store.InvalidChange as exc:
            raise CommandError(f"{key}: {exc}") from exc
        row = Flag.objects.using(using).get(key=key)
        self.stdout.write(f"{key}: {self._state(row.to_document())}")

    @staticmethod
    def _state(flag: Mapping[str, Any]) -> str:
        if not flag.get("enabled"):
            return "off"
        parts = [f"on, {_num(flag.get('percentage', 0))} %"]
        for name in ("rules", "prerequisites", "variants"):
            if flag.get(name):
                parts.append(f"{len(flag[name])} {name}")
        return ", ".join(parts)

    # --- actions ---------------------------------------------------------------------------------

    def _list(self, options: Mapping[str, Any]) -> None:
        if options.get("database"):
            flags = store.export_document(options["database"])["flags"]
            where = f"database {options['database']!r}"
        else:
            evaluator = get_evaluator()
            flags = evaluator.document()["flags"]
            where = conf.load().source
        if not flags:
            self.stdout.write(f"no flags ({where})")
            return
        width = max(len(f["key"]) for f in flags)
        for flag in flags:
            self.stdout.write(f"{flag['key']:<{width}}  {self._state(flag)}")

    def _enable(self, options: Mapping[str, Any]) -> None:
        for key in options["keys"]:
            self._change(options, key, enabled=True)

    def _disable(self, options: Mapping[str, Any]) -> None:
        for key in options["keys"]:
            self._change(options, key, enabled=False)

    def _set_percentage(self, options: Mapping[str, Any]) -> None:
        percentage = float(options["percentage"])
        if not 0 <= percentage <= 100:
            raise CommandError(f"a percentage is between 0 and 100, got {_num(percentage)}")
        self._change(options, options["key"], percentage=_num(percentage))

    def _import(self, options: Mapping[str, Any]) -> None:
        name = options["file"]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"{name}: cannot read a JSON document: {exc}") from exc
        try:
            evaluator = store.validate_document({"flags": document} if isinstance(document, list) else document)
        except store.InvalidChange as exc:
            raise CommandError(f"{name}: {exc}") from exc
        for warning in evaluator.warnings:
            self.stderr.write(f"{name}: warning: {warning}")
        if options["dry_run"]:
            self.stdout.write(f"{name}: valid, {len(evaluator)} flags (dry run: nothing changed)")
            return
        counts = store.import_document(
            document,
            user=self._by(options),
            using=self._using(options),
            comment=f"manage.py ferroflag_flags import {name}",
        )
        self.stdout.write(f"{name}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))

    def _export(self, options: Mapping[str, Any]) -> None:
        text = json.dumps(store.export_document(self._using(options)), indent=2, ensure_ascii=False) + "\n"
        if options["file"] == "-":
            self.stdout.write(text, ending="")
        else:
            Path(options["file"]).write_text(text, encoding="utf-8")

    def _explain(self, options: Mapping[str, Any]) -> None:
        from ferroflag.cli import _print_explanation

        evaluator: FlagEvaluator = get_evaluator()
        ctx = self._context(options)
        explanation = evaluator.explain(options["key"], ctx)
        if explanation is None:
            raise CommandError(f"no flag {options['key']!r} (flags: {', '.join(evaluator.keys()) or 'none'})")
        if options["json"]:
            self.stdout.write(json.dumps(explanation, indent=2, ensure_ascii=False))
            return
        flag = next(f for f in evaluator.document()["flags"] if f["key"] == options["key"])
        text = io.StringIO()  # print()'s lines, written as they are (Django's stdout adds a newline per write)
        _print_explanation(ctx, explanation, flag, text)
        self.stdout.write(text.getvalue(), ending="")

    def _context(self, options: Mapping[str, Any]) -> EvalContext:
        if options.get("user_id") is not None:
            return EvalContext(options["user_id"])
        user: Any = None
        if options.get("user"):
            model = get_user_model()
            try:
                user = model._default_manager.get(**{str(model.USERNAME_FIELD): options["user"]})
            except model.DoesNotExist as exc:
                raise CommandError(f"no user {options['user']!r}") from exc
        builder = conf.context_builder(conf.load())
        value = builder(HttpRequest(), user)
        if hasattr(value, "__await__"):
            from asgiref.sync import async_to_sync

            async def wait() -> Any:
                return await value  # type: ignore[misc]

            value = async_to_sync(wait)()
        return value if isinstance(value, EvalContext) else EvalContext(**value)


def _num(value: Any) -> int | float:
    number = float(value or 0)
    return int(number) if number.is_integer() else number
