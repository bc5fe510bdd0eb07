"""The `ferroflag` command line: check, explain, simulate, diff and serve flag files.

    ferroflag validate FILE... [--strict] [--json]
    ferroflag eval FILE KEY --user-id U [--email E --plan P --country C --prop k=v ...] [--json]
    ferroflag rollout FILE KEY [--users N] [--prop k=v ...] [--json]
    ferroflag diff OLD NEW [--users N] [--json]
    ferroflag serve FILE [--host 127.0.0.1] [--port 8080]
    ferroflag schema

Exit codes: 0 success; 1 an error (a file is invalid or unreadable, validation failed, the flag is not
in the file); 2 a usage error (bad arguments). `main()` returns the code instead of exiting, so it can
be called in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, TextIO

from ferroflag import ConfigError, EvalContext, EvalResult, FlagEvaluator, __version__

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "FileReport",
    "Problem",
    "build_parser",
    "lint_document",
    "main",
    "schema_text",
    "validate_bytes",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

#: Synthetic users are `user-0` .. `user-{N-1}`; more than this is almost certainly a typo.
MAX_USERS = 10_000_000

_DOCUMENT_ERROR_PREFIX = "invalid flag document: "


# ---------------------------------------------------------------------------------------------
# validate


@dataclass(frozen=True)
class Problem:
    """One error or warning about a flag document, located by flag key and JSON path."""

    level: Literal["error", "warning"]
    message: str
    flag: str | None = None
    #: JSON path from the document root, e.g. `flags[2].rules[0].conditions[1].operator`; "" for the document.
    path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"flag": self.flag, "path": self.path, "message": self.message}

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        flag = f" (flag {_quote(self.flag)})" if self.flag is not None else ""
        return f"{self.level}: {where}{self.message}{flag}"


@dataclass
class FileReport:
    """What `validate` found in one file."""

    file: str
    flags: int | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def ok(self, strict: bool) -> bool:
        return not self.errors and not (strict and self.warnings)

    def to_json(self, strict: bool) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok(strict),
            "flags": self.flags,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
        }


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _bare_message(error: ConfigError) -> str:
    """The message of a `ConfigError` without the location the native text starts with."""
    text = str(error)
    if text.startswith(_DOCUMENT_ERROR_PREFIX):
        text = text[len(_DOCUMENT_ERROR_PREFIX) :]
    path = error.path
    relative = path.split(".", 1)[1] if path.startswith("flags[") and "." in path else ""
    if error.flag is not None:
        location = f"flag {_quote(error.flag)}"
    elif path.startswith("flags["):
        location = f"flag at index {path[len('flags[') : path.index(']')]}"
    else:
        location, relative = (path or "document"), ""
    if relative:
        location += f", field {_quote(relative)}"
    return text[len(location) + 2 :] if text.startswith(location + ": ") else text


def _flag_index(path: str) -> int:
    if path.startswith("flags[") and "]" in path:
        digits = path[len("flags[") : path.index("]")]
        if digits.isdigit():
            return int(digits)
    return -1


def _as_number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _lint_flag(index: int, flag: Mapping[str, Any]) -> Iterator[Problem]:
    key = flag.get("key")
    key = key if isinstance(key, str) else None
    base = f"flags[{index}]"
    rules = flag.get("rules") or []
    if not isinstance(rules, list):
        return
    # Rules are tried by priority, highest first; a stable sort keeps document order among equals.
    order = sorted(range(len(rules)), key=lambda j: -_priority(rules[j]))
    catch_all: int | None = None
    for j in order:
        rule = rules[j]
        if catch_all is not None:
            yield Problem(
                "warning",
                f"unreachable: rules[{catch_all}] (priority {_priority(rules[catch_all])}) has no conditions, "
                "matches everyone and is tried first",
                key,
                f"{base}.rules[{j}]",
            )
        elif isinstance(rule, dict) and not rule.get("conditions"):
            catch_all = j
    percentage = _as_number(flag.get("percentage"))
    if catch_all is not None:
        if percentage is not None and 0 < percentage < 100:
            yield Problem(
                "warning",
                f"the rollout is never used: rules[{catch_all}] has no conditions and matches everyone first",
                key,
                f"{base}.percentage",
            )
    elif rules and percentage == 0:
        yield Problem(
            "warning",
            '0 means "everyone", not "nobody": users no rule matches get the flag too (reason "default"); '
            "to serve only the users the rules match use a tiny rollout such as 0.0001, "
            "and to serve everyone leave the percentage out",
            key,
            f"{base}.percentage",
        )


def _priority(rule: object) -> int:
    if isinstance(rule, dict):
        value = rule.get("priority")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def lint_document(document: object) -> list[Problem]:
    """Warnings beyond the native loader's, for a document the loader accepted.

    `percentage: 0` on a flag with rules (it means "everyone", not "only the targeted users"), rules
    after a rule with no conditions (unreachable), and a rollout behind such a rule (never used).
    """
    flags = document.get("flags") if isinstance(document, dict) else document
    if not isinstance(flags, list):
        return []
    return [problem for i, flag in enumerate(flags) if isinstance(flag, dict) for problem in _lint_flag(i, flag)]


def validate_bytes(data: bytes, name: str = "<document>") -> FileReport:
    """Loads a document the way the evaluator does and collects its errors and warnings."""
    report = FileReport(name)
    evaluator = FlagEvaluator()
    try:
        evaluator.update_json(data)
    except ConfigError as error:
        report.errors.append(Problem("error", _bare_message(error), error.flag, error.path))
        return report
    report.flags = len(evaluator)
    found = [Problem("warning", w.message, w.flag, w.path) for w in evaluator.warnings]
    # The native parser accepted it, so Python's accepts it too; a surprise only skips the lints.
    with contextlib.suppress(ValueError):
        found += lint_document(json.loads(data))
    # Stable: per flag, the loader's warnings first, then the lints.
    report.warnings = sorted(found, key=lambda p: _flag_index(p.path))
    return report


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _os_message(error: OSError) -> str:
    return f"cannot read: {error.strerror or error}"


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    strict: bool = args.strict
    reports: list[FileReport] = []
    for path in args.files:
        name = "<stdin>" if path == "-" else path
        try:
            data = _read(path)
        except OSError as error:
            reports.append(FileReport(name, errors=[Problem("error", _os_message(error))]))
            continue
        report = validate_bytes(data, name)
        reports.append(report)
    ok = all(r.ok(strict) for r in reports)
    if args.json:
        _print_json({"ok": ok, "strict": strict, "files": [r.to_json(strict) for r in reports]}, out)
        return EXIT_OK if ok else EXIT_ERROR
    for report in reports:
        for problem in report.errors + report.warnings:
            print(f"{report.file}: {problem.describe()}", file=out)
        if report.errors:
            summary = f"FAILED ({_plural(len(report.errors), 'error')})"
        elif report.warnings:
            verdict = "FAILED (--strict)" if strict else "ok"
            summary = f"{verdict}, {_plural(report.flags or 0, 'flag')}, {_plural(len(report.warnings), 'warning')}"
        else:
            summary = f"ok, {_plural(report.flags or 0, 'flag')}"
        if not (args.quiet and report.ok(strict)):
            print(f"{report.file}: {summary}", file=out)
    return EXIT_OK if ok else EXIT_ERROR


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------------------------------
# shared: loading, contexts, output


class _CommandError(Exception):
    """Ends a command with exit code 1 and this message on stderr."""


def _load(path: str) -> FlagEvaluator:
    evaluator = FlagEvaluator()
    try:
        evaluator.update_json(_read(path))
    except OSError as error:
        raise _CommandError(f"{path}: {_os_message(error)}") from error
    except ConfigError as error:
        raise _CommandError(f"{path}: {error}") from error
    return evaluator


def _prop(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _user_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= n <= MAX_USERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_USERS}, got {n}")
    return n


def _context(args: argparse.Namespace, user_id: str) -> EvalContext:
    return EvalContext(user_id, email=args.email, plan=args.plan, country=args.country, properties=dict(args.prop))


def _context_json(ctx: EvalContext, with_user: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"user_id": ctx.user_id} if with_user else {}
    data.update(email=ctx.email, plan=ctx.plan, country=ctx.country, properties=ctx.properties)
    return data


def _result_json(result: EvalResult) -> dict[str, Any]:
    return {"enabled": result.enabled, "variant": result.variant, "reason": result.reason}


def _print_json(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")


def _number(x: float) -> str:
    return f"{x:g}" if abs(x) >= 1e-4 or x == 0 else repr(x)


def _synthetic_users(n: int) -> str:
    return "user-0" if n == 1 else f"user-0 .. user-{n - 1}"


# ---------------------------------------------------------------------------------------------
# eval


def _cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    evaluator = _load(args.file)
    ctx = _context(args, args.user_id)
    result = evaluator.evaluate(args.key, ctx)
    explanation = evaluator.explain(args.key, ctx)
    config = evaluator.get_config(args.key)
    if args.json:
        _print_json(
            {
                "flag": args.key,
                "context": _context_json(ctx),
                "result": _result_json(result),
                "explanation": explanation,
                "warnings": [Problem("warning", w.message, w.flag, w.path).to_json() for w in evaluator.warnings],
            },
            out,
        )
    else:
        for w in evaluator.warnings:
            print(f"{args.file}: warning: {w.path}: {w.message}", file=sys.stderr)
        if explanation is None or config is None:
            raise _CommandError(_not_found(args.file, args.key, evaluator))
        _print_explanation(args.key, ctx, explanation, config.default_variant, out)
    return EXIT_OK if explanation is not None else EXIT_ERROR


def _not_found(file: str, key: str, evaluator: FlagEvaluator) -> str:
    return f"{file}: no flag {key!r} (flags: {', '.join(evaluator.keys()) or 'none'})"


def _print_explanation(
    key: str, ctx: EvalContext, explanation: Mapping[str, Any], default_variant: str, out: TextIO
) -> None:
    who = [f"user_id={ctx.user_id!r}"]
    who += [f"{name}={value!r}" for name in ("email", "plan", "country") if (value := getattr(ctx, name))]
    who += [f"{name}={value!r}" for name, value in ctx.properties.items()]
    print(f"{key} for {' '.join(who)}", file=out)
    state = "ON" if explanation["enabled"] else "off"
    variant = f" variant={explanation['variant']!r}" if explanation["variant"] else ""
    print(f"  result: {state}{variant} (reason: {explanation['reason']})", file=out)
    if explanation["reason"] == "disabled":
        print("  the flag is disabled (enabled: false): nothing else is looked at", file=out)
        return
    rules: list[Mapping[str, Any]] = explanation["rules"]
    if rules:
        print("  rules, in the order tried (priority, then file order):", file=out)
    for rule in rules:
        verdict = f"MATCH -> variant {rule['variant']!r}" if rule["matched"] else "no match"
        print(f"    rules[{rule['index']}] priority {rule['priority']}: {verdict}", file=out)
        if not rule["conditions"]:
            print("      (no conditions: matches everyone)", file=out)
        for c in rule["conditions"]:
            mark = "yes" if c["matched"] else "no "
            test = f"{c['attribute']} {c['operator']} {c['values']!r}"
            print(f"      {mark} {test}  (user has {c['actual']!r})", file=out)
    rollout: Mapping[str, Any] | None = explanation["rollout"]
    if rollout is not None:
        inside = "<" if rollout["included"] else ">="
        verdict = "inside the rollout" if rollout["included"] else "outside the rollout"
        threshold = _number(rollout["percentage"])
        print(f"  rollout: bucket {rollout['bucket']:.4f} {inside} percentage {threshold}: {verdict}", file=out)
    elif explanation["reason"] == "default":
        why = "no rule matched, and" if rules else "no rules, and"
        print(f"  {why} no rollout (percentage 0 or 100 means everyone): on", file=out)
    pick: Mapping[str, Any] | None = explanation["variant_pick"]
    if pick is not None:
        weights = ", ".join(f"{name}={_number(weight)}" for name, weight in pick["weights"])
        print(
            f"  variant: point {pick['point']:.4f} of total {_number(pick['total'])} over [{weights}] "
            f"-> {pick['picked']!r}",
            file=out,
        )
    elif explanation["enabled"] and explanation["reason"] != "rule_match":
        print(f"  variant: no weighted split: default_variant {default_variant!r}", file=out)


# ---------------------------------------------------------------------------------------------
# rollout


_BAR_WIDTH = 32
_EIGHTHS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")


def _bar(fraction: float, out: TextIO) -> str:
    try:
        "█▏".encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "#" * round(fraction * _BAR_WIDTH)
    full, rest = divmod(round(fraction * _BAR_WIDTH * 8), 8)
    return "█" * full + _EIGHTHS[rest]


def _distribution(evaluator: FlagEvaluator, key: str, args: argparse.Namespace) -> Counter[EvalResult]:
    counts: Counter[EvalResult] = Counter()
    for i in range(args.users):
        counts[evaluator.evaluate(key, _context(args, f"user-{i}"))] += 1
    return counts


def _cmd_rollout(args: argparse.Namespace, out: TextIO) -> int:
    evaluator = _load(args.file)
    config = evaluator.get_config(args.key)
    if config is None:
        raise _CommandError(_not_found(args.file, args.key, evaluator))
    n: int = args.users
    counts = _distribution(evaluator, args.key, args)
    outcomes: Counter[tuple[bool, str]] = Counter()
    reasons: Counter[str] = Counter()
    for result, count in counts.items():
        outcomes[(result.enabled, result.variant)] += count
        reasons[result.reason] += count
    rows = sorted(outcomes.items(), key=lambda item: (not item[0][0], item[0][1]))
    enabled = sum(count for (on, _), count in outcomes.items() if on)
    if args.json:
        _print_json(
            {
                "flag": args.key,
                "users": n,
                "context": _context_json(_context(args, ""), with_user=False),
                "enabled": enabled,
                "outcomes": [
                    {"enabled": on, "variant": variant, "users": count, "share": count / n}
                    for (on, variant), count in rows
                ],
                "reasons": dict(sorted(reasons.items())),
            },
            out,
        )
        return EXIT_OK
    print(f"{args.key} over {n} synthetic users ({_synthetic_users(n)}) from {args.file}", file=out)
    print(f"  {_describe_config(config.to_dict())}", file=out)
    labels = [("on  " + (repr(variant) if variant else "(no variant)")) if on else "off" for (on, variant), _ in rows]
    width = max([len("outcome"), *map(len, labels)])
    print(f"  {'outcome':<{width}}  {'users':>8}  {'share':>7}", file=out)
    for label, (_, count) in zip(labels, rows, strict=True):
        print(f"  {label:<{width}}  {count:>8}  {count / n:>7.2%}  {_bar(count / n, out)}", file=out)
    summary = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
    print(f"  enabled for {enabled} of {n} ({enabled / n:.2%}); by reason: {summary}", file=out)
    return EXIT_OK


def _describe_config(flag: Mapping[str, Any]) -> str:
    parts = ["enabled" if flag["enabled"] else "disabled (enabled: false)"]
    percentage = flag["percentage"]
    if 0 < percentage < 100:
        parts.append(f"rollout {_number(percentage)} %")
    else:
        parts.append(f"percentage {_number(percentage)} (everyone)")
    parts.append(_plural(len(flag["rules"]), "rule"))
    if flag["variants"]:
        parts.append("variants " + ", ".join(f"{name}={_number(w)}" for name, w in flag["variants"].items()))
    if flag["default_variant"]:
        parts.append(f"default_variant {flag['default_variant']!r}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# diff


@dataclass
class _FlagChange:
    key: str
    status: Literal["added", "removed", "changed"]
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    turned_on: int = 0
    turned_off: int = 0
    variant_changed: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def users_changed(self) -> int:
        return self.turned_on + self.turned_off + self.variant_changed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key}
        if self.status == "changed":
            data["fields"] = self.fields
        data.update(
            users_changed=self.users_changed,
            turned_on=self.turned_on,
            turned_off=self.turned_off,
            variant_changed=self.variant_changed,
            examples=self.examples,
        )
        return data


_EXAMPLES = 5


def _sample(change: _FlagChange, old: FlagEvaluator, new: FlagEvaluator, args: argparse.Namespace) -> None:
    for i in range(args.users):
        ctx = _context(args, f"user-{i}")
        before, after = old.evaluate(change.key, ctx), new.evaluate(change.key, ctx)
        if before.enabled != after.enabled:
            if after.enabled:
                change.turned_on += 1
            else:
                change.turned_off += 1
        elif before.variant != after.variant:
            change.variant_changed += 1
        else:
            continue
        if len(change.examples) < _EXAMPLES:
            change.examples.append(ctx.user_id)


def _cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    old, new = _load(args.old), _load(args.new)
    old_defs = {c.key: c.to_dict() for c in old.configs()}
    new_defs = {c.key: c.to_dict() for c in new.configs()}
    changes: list[_FlagChange] = [_FlagChange(k, "added") for k in new_defs if k not in old_defs]
    changes += [_FlagChange(k, "removed") for k in old_defs if k not in new_defs]
    unchanged: list[str] = []
    for key, after in new_defs.items():
        before = old_defs.get(key)
        if before is None:
            continue
        if before == after:
            unchanged.append(key)
            continue
        names = [*before, *(name for name in after if name not in before)]
        fields = {n: {"old": before.get(n), "new": after.get(n)} for n in names if before.get(n) != after.get(n)}
        changes.append(_FlagChange(key, "changed", fields))
    for change in changes:
        _sample(change, old, new, args)
    if args.json:
        by_status = {status: [c.to_json() for c in changes if c.status == status] for status in ("added", "removed")}
        _print_json(
            {
                "old": args.old,
                "new": args.new,
                "users": args.users,
                **by_status,
                "changed": [c.to_json() for c in changes if c.status == "changed"],
                "unchanged": unchanged,
            },
            out,
        )
        return EXIT_OK
    n = args.users
    print(f"{args.old} -> {args.new}: answers compared for {n} synthetic users ({_synthetic_users(n)})", file=out)
    if not changes:
        print(f"  no flag changed ({_plural(len(unchanged), 'flag')} identical)", file=out)
        return EXIT_OK
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for change in changes:
        print(f"{marks[change.status]} {change.status:<7} {change.key}", file=out)
        for name, values in change.fields.items():
            print(f"    {name}: {_short(values['old'])} -> {_short(values['new'])}", file=out)
        if change.users_changed:
            share = change.users_changed / n
            print(
                f"    answers change for {change.users_changed} of {n} users ({share:.1%}): "
                f"off->on {change.turned_on}, on->off {change.turned_off}, variant {change.variant_changed}; "
                f"e.g. {', '.join(change.examples)}",
                file=out,
            )
        else:
            print(f"    no sampled user's answer changes (of {n})", file=out)
    if unchanged:
        print(f"= unchanged: {', '.join(unchanged)}", file=out)
    return EXIT_OK


def _short(value: object, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# serve, schema


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from ferroflag import server  # only `serve` needs the HTTP machinery

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.no_access_log:
        logging.getLogger(server.ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        service = server.FlagService(args.file, args.host, args.port, poll_interval=args.poll_interval)
    except ConfigError as error:
        raise _CommandError(f"{args.file}: {error}") from error
    except OSError as error:
        raise _CommandError(f"{args.file}: cannot serve: {error.strerror or error}") from error
    return server.run(service, out=out)


def schema_text() -> str:
    """The JSON Schema (draft 2020-12) of a flag document, as shipped in the package."""
    return resources.files("ferroflag").joinpath("schema.json").read_text(encoding="utf-8")


def _cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    out.write(schema_text())
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# the parser


_EPILOG = "exit codes: 0 success, 1 error (invalid file, failed validation, unknown flag), 2 usage error"


def _poll_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 3600 seconds, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `ferroflag` command."""
    parser = argparse.ArgumentParser(
        prog="ferroflag",
        description="Check, explain, simulate, diff and serve ferroflag flag files.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"ferroflag {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    context = argparse.ArgumentParser(add_help=False)
    group = context.add_argument_group("context attributes")
    group.add_argument("--email", default="", help="the user's email")
    group.add_argument("--plan", default="", help="the user's plan")
    group.add_argument("--country", default="", help="the user's country")
    group.add_argument(
        "--prop",
        metavar="NAME=VALUE",
        type=_prop,
        action="append",
        default=[],
        help="a property (repeatable), e.g. --prop beta=true --prop app_version=2.4.1",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of text")

    def command(name: str, help: str, description: str, parents: Sequence[argparse.ArgumentParser] = ()) -> Any:
        return commands.add_parser(
            name,
            help=help,
            description=description,
            epilog=_EPILOG,
            parents=list(parents),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = command(
        "validate",
        "check flag files: errors and warnings, with flag key and JSON path",
        "Load each FILE as the evaluator would and report errors (the file is rejected) and warnings\n"
        "(it loads, but probably not as meant): unknown operators, patterns that do not compile,\n"
        'duplicate keys, weights summing to 0, percentages outside [0, 100], "percentage: 0" on a\n'
        "flag with rules (0 means everyone), rules after a rule with no conditions (unreachable).\n"
        "Exit 1 when a file has errors, or warnings with --strict. FILE '-' reads stdin.",
        [as_json],
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="flag documents to check")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing for files that pass")
    p.set_defaults(run=_cmd_validate)

    p = command(
        "eval",
        "evaluate one flag for one user and explain the answer",
        "Evaluate KEY for the user and print the answer and why: each rule tried and each condition\n"
        "against the user's value, the rollout bucket against the percentage, the variant pick.\n"
        "Exit 1 when FILE has no flag KEY.",
        [context, as_json],
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("key", metavar="KEY", help="flag key")
    p.add_argument("--user-id", required=True, help="the user id that rollouts and variant picks bucket on")
    p.set_defaults(run=_cmd_eval)

    p = command(
        "rollout",
        "distribution of a flag's answers over synthetic users",
        "Evaluate KEY for N synthetic users (user-0 .. user-N-1, with the context attributes given)\n"
        "and show how many get the flag, and which variant, as a table with bars.",
        [context, as_json],
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("key", metavar="KEY", help="flag key")
    p.add_argument("--users", type=_user_count, default=10_000, metavar="N", help="how many users (default 10000)")
    p.set_defaults(run=_cmd_rollout)

    p = command(
        "diff",
        "which flags change between two files, and for how many users",
        "Compare two flag documents: flags added, removed and changed (with the fields that\n"
        "changed), and for each, how many of N synthetic users get a different answer (turned on,\n"
        "turned off, another variant). For reviewing a flag change before it ships.",
        [context, as_json],
    )
    p.add_argument("old", metavar="OLD", help="the flag document before")
    p.add_argument("new", metavar="NEW", help="the flag document after")
    p.add_argument("--users", type=_user_count, default=1000, metavar="N", help="users to sample (default 1000)")
    p.set_defaults(run=_cmd_diff)

    p = command(
        "serve",
        "serve a flag file over HTTP, with ETag, gzip and reload on change",
        "Serve FILE at GET /api/flags (strong ETag, 304 on If-None-Match, gzip when accepted) and\n"
        "GET /healthz. The file is validated first and re-read when it changes; an edit that does not\n"
        "validate is logged and the last good document keeps being served. SIGINT/SIGTERM stop it.\n"
        "The first line on stdout is 'ferroflag: serving FILE at URL' (URL ends in /api/flags); with\n"
        "--port 0 the system picks a free port.",
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port to listen on, 0 for any free one (default 8080)")
    p.add_argument(
        "--poll-interval",
        type=_poll_interval,
        default=1.0,
        metavar="SECONDS",
        help="how often to check the file for changes (default 1)",
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log a line per request")
    p.set_defaults(run=_cmd_serve)

    p = command("schema", "print the JSON Schema of flag files", "Print the JSON Schema (draft 2020-12) of flag files.")
    p.set_defaults(run=_cmd_schema)
    return parser


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns its exit code (it does not call `sys.exit`)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return _exit_code(exit_.code)
    out = sys.stdout
    try:
        code: int = args.run(args, out)
        out.flush()
        return code
    except _CommandError as error:
        print(f"ferroflag {args.command}: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ferroflag schema | head`: stop quietly, and keep Python from complaining at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
