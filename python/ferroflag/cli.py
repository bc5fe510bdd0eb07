"""The `ferroflag` command line: check, explain, simulate, diff, migrate and serve flag files.

    ferroflag validate FILE... [--strict] [--json] [-q]
    ferroflag eval FILE KEY --user-id U [--email E --plan P --country C --prop k=v ...] [--json]
    ferroflag rollout FILE KEY [--users N] [--prop k=v ...] [--json]
    ferroflag diff OLD NEW [--users N] [--json]
    ferroflag migrate FILE [--users N] [--json]
    ferroflag stale FILE [--usage METRICS] [--now INSTANT] [--json]
    ferroflag serve FILE [--host 127.0.0.1] [--port 8080]
    ferroflag schema

Exit codes: 0 success; 1 an error (a file is invalid or unreadable, validation failed, the flag is not
in the file, `migrate` found flags whose answers change); 2 a usage error (bad arguments); 70 an
internal error (a bug: one line, the traceback only with FERROFLAG_DEBUG=1); 130 interrupted (Ctrl-C).
`main()` returns the code instead of exiting, so it can be called in-process.

No input and no environment makes the command show a traceback: files that are missing, directories,
FIFOs, devices, over MAX_FILE_BYTES, not UTF-8 or nested too deeply; arguments that are not UTF-8;
a stdout or stderr whose encoding lacks a character, that is closed, or whose reader went away. Every
value an error or warning quotes is cut to a prefix (`_quote`), so each such line stays short.

Every warning `validate` prints comes from the loader itself (`FlagEvaluator.warnings`, docs/spec.md
§6): the command line has no checks of its own, so it can never disagree with what the engine loads.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import json
import logging
import os
import stat
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Literal, NoReturn, TextIO

from ferroflag import ConfigError, EvalContext, EvalResult, FlagEvaluator, __version__

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "MAX_FILE_BYTES",
    "FileReport",
    "Problem",
    "build_parser",
    "main",
    "schema_text",
    "validate_bytes",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
#: A bug in the command line or the engine: sysexits.h's EX_SOFTWARE, so scripts can tell it from a bad file.
EXIT_INTERNAL = 70
#: Ctrl-C, as shells report a process that SIGINT ended (128 + 2).
EXIT_INTERRUPTED = 130

#: A flag file larger than this is refused unread: the limit `FlagFileWatcher` and `FlagSyncClient` apply
#: by default (16 MiB), so `validate` never passes a file that the apps would refuse to load.
MAX_FILE_BYTES = 16 * 1024 * 1024

#: How much of a value an error or warning quotes; the engine's own messages cut at the same length.
QUOTE_LIMIT = 80

#: The set-it-to-1 switch that makes an internal error print its traceback (for bug reports).
DEBUG_ENV = "FERROFLAG_DEBUG"

#: Synthetic users are `user-0` .. `user-{N-1}`; more than this is almost certainly a typo.
MAX_USERS = 10_000_000

_BUILTIN_FIELDS = ("email", "plan", "country")


# ---------------------------------------------------------------------------------------------
# validate


@dataclass(frozen=True)
class Problem:
    """One error or warning about a flag document, located by flag (or segment) key and JSON path."""

    level: Literal["error", "warning"]
    message: str
    flag: str | None = None
    #: JSON path from the document root, e.g. `flags[2].rules[0].conditions[1].operator`; "" for the document.
    path: str = ""
    #: The key of the segment the problem is in, for paths under `segments[i]`.
    segment: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"flag": self.flag, "segment": self.segment, "path": self.path, "message": self.message}

    def describe(self) -> str:
        where = f"{self.path}: " if self.path else ""
        if self.flag is not None:
            owner = f" (flag {_quote(self.flag)})"
        elif self.segment is not None:
            owner = f" (segment {_quote(self.segment)})"
        else:
            owner = ""
        return f"{self.level}: {where}{self.message}{owner}"


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


def _length(text: str) -> str:
    # Bytes, as the engine counts them in its messages; surrogatepass so that a lone surrogate (an
    # argument or a file name that is not UTF-8) is counted too, not raised on.
    return f"{len(text.encode('utf-8', 'surrogatepass'))} bytes"


def _quote(text: str, limit: int | None = QUOTE_LIMIT) -> str:
    """`text` as a JSON string; a longer one as its first `limit` characters and its length, the way the
    engine quotes (`"kkkk…"… (15000000 bytes)`), so that a 15 MB key makes a short line. `limit=None`
    quotes it whole: for what a command prints as its answer, not for errors and warnings."""
    if limit is None or len(text) <= limit:
        return json.dumps(text, ensure_ascii=False)
    return f"{json.dumps(text[:limit], ensure_ascii=False)}… ({_length(text)})"


def _repr(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`repr(text)`, cut like `_quote`: for the messages that quote Python-style."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({_length(text)})"


def _clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` unquoted, cut like `_quote`."""
    return text if len(text) <= limit else f"{text[:limit]}… ({_length(text)})"


def _location(path: str) -> tuple[int, int]:
    """Orders problems: the document's own fields, then segments, then flags, each by index."""
    for rank, prefix in ((1, "segments["), (2, "flags[")):
        if path.startswith(prefix) and "]" in path:
            digits = path[len(prefix) : path.index("]")]
            if digits.isdigit():
                return rank, int(digits)
    return 0, 0


def _segment_keys(data: bytes) -> list[str | None]:
    """The key of each segment as the file writes it (None where it has none), read by Python's own
    JSON parser: only used to name the segment a problem is in."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return []
    segments = document.get("segments") if isinstance(document, dict) else None
    if not isinstance(segments, list):
        return []
    return [s["key"] if isinstance(s, dict) and isinstance(s.get("key"), str) else None for s in segments]


def _segment_of(path: str, keys: Sequence[str | None]) -> str | None:
    rank, index = _location(path)
    return keys[index] if rank == 1 and index < len(keys) else None


def validate_bytes(data: bytes, name: str = "<document>") -> FileReport:
    """Loads a document the way the evaluator does and collects its errors and warnings.

    The warnings are exactly the loader's (`FlagEvaluator.warnings`), grouped by where they are.
    """
    report = FileReport(name)
    evaluator = FlagEvaluator()
    try:
        evaluator.update_json(data)
    except ConfigError as error:
        segment = _segment_of(error.path, _segment_keys(data)) if error.path.startswith("segments[") else None
        report.errors.append(Problem("error", error.message, error.flag, error.path, segment))
        return report
    report.flags = len(evaluator)
    report.warnings = _warnings(evaluator, data)
    return report


def _warnings(evaluator: FlagEvaluator, data: bytes) -> list[Problem]:
    """The loader's warnings, grouped by place (the loader's order within each place)."""
    keys = _segment_keys(data) if any(w.path.startswith("segments[") for w in evaluator.warnings) else []
    found = [Problem("warning", w.message, w.flag, w.path, _segment_of(w.path, keys)) for w in evaluator.warnings]
    return sorted(found, key=lambda p: _location(p.path))


class _ReadError(Exception):
    """A flag file that cannot be read; the message starts with "cannot read: "."""


_MIB = f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"


def _read(path: str) -> bytes:
    """The bytes of the flag file at `path` ("-" is stdin), at most MAX_FILE_BYTES.

    Raises `_ReadError` for anything that is not a readable flag file of that size. It never blocks on a
    FIFO nobody writes to: the file is opened non-blocking (opening a FIFO is what would wait for a
    writer), and a FIFO without a writer then reads as empty at once. A pipe that has a writer, as
    `ferroflag diff <(git show HEAD:flags.json) flags.json` gives, is read to its end like stdin.
    """
    try:
        if path == "-":
            stdin = sys.stdin
            if stdin is None:  # started with stdin closed (`<&-`)
                raise _ReadError("cannot read: stdin is closed")
            return _bounded(stdin.buffer.read(MAX_FILE_BYTES + 1))
        nonblocking = getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb", buffering=0) as f:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
                raise _ReadError(f"cannot read: larger than the {_MIB} limit ({info.st_size} bytes)")
            if nonblocking:
                os.set_blocking(fd, True)  # a pipe with a writer: wait for its data, as for stdin
            return _bounded(_read_up_to(f, MAX_FILE_BYTES + 1))
    except OSError as error:
        raise _ReadError(f"cannot read: {error.strerror or error}") from error
    except ValueError as error:  # an in-process caller's path with a NUL in it
        raise _ReadError(f"cannot read: {_clip(str(error))}") from error


def _read_up_to(f: io.RawIOBase, n: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < n:
        chunk = f.read(n - size)
        if not chunk:  # end of file; None (would block) cannot happen once the fd blocks again
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _bounded(data: bytes) -> bytes:
    """`data`, read up to one byte past the limit (a device or pipe has no size to check first)."""
    if len(data) > MAX_FILE_BYTES:
        raise _ReadError(f"cannot read: larger than the {_MIB} limit")
    return data


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    strict: bool = args.strict
    reports: list[FileReport] = []
    for path in args.files:
        name = "<stdin>" if path == "-" else path
        try:
            data = _read(path)
        except _ReadError as error:
            reports.append(FileReport(name, errors=[Problem("error", str(error))]))
            continue
        reports.append(validate_bytes(data, name))
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
    return _load_with_data(path)[0]


def _load_with_data(path: str) -> tuple[FlagEvaluator, bytes]:
    evaluator = FlagEvaluator()
    try:
        data = _read(path)
        evaluator.update_json(data)
    except _ReadError as error:
        raise _CommandError(f"{path}: {error}") from error
    except ConfigError as error:
        raise _CommandError(f"{path}: {error}") from error
    return evaluator, data


def _utf8(text: str) -> str:
    """An argument that must be text (a flag key, a user id, an attribute, a host).

    Python hands argv bytes that are not valid in the locale's encoding over as lone surrogates
    (surrogateescape); the engine only takes UTF-8 text, so such an argument is a usage error that says
    which one it is. Under an ASCII locale (LC_ALL=C without coercion) even valid UTF-8 arrives that
    way: those bytes are the text that was typed, and are decoded as such.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return text
    try:
        return os.fsencode(text).decode("utf-8")
    except (UnicodeError, ValueError):
        raise argparse.ArgumentTypeError(f"not valid UTF-8: {_shown_bytes(text)}") from None


def _shown_bytes(text: str) -> str:
    """What an argument that is not UTF-8 was, as the bytes it came from (cut to a prefix)."""
    try:
        data = os.fsencode(text)
    except (UnicodeError, ValueError):  # an in-process caller's lone surrogate outside surrogateescape
        return _clip(ascii(text))
    return repr(data) if len(data) <= QUOTE_LIMIT else f"{data[:QUOTE_LIMIT]!r}… ({len(data)} bytes)"


def _prop(text: str) -> tuple[str, str]:
    name, sep, value = _utf8(text).partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {_repr(text)}")
    return name, value


def _user_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {_repr(text)}") from None
    if not 1 <= n <= MAX_USERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_USERS}, got {_clip(text)}")
    return n


@dataclass(frozen=True)
class _Attributes:
    """The context attributes given on the command line; None for a field not given."""

    email: str | None = None
    plan: str | None = None
    country: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def from_args(args: argparse.Namespace) -> _Attributes:
        return _Attributes(
            getattr(args, "email", None),
            getattr(args, "plan", None),
            getattr(args, "country", None),
            dict(getattr(args, "prop", None) or []),
        )

    def context(self, user_id: str, synthetic: Collection[str] = ()) -> EvalContext:
        """A context with these attributes; each attribute named in `synthetic` that was not given
        explicitly gets `user_id` too (so a flag bucketing by it spreads like one bucketing by user_id)."""
        fields = {"email": self.email, "plan": self.plan, "country": self.country}
        properties = dict(self.properties)
        for name in synthetic:
            if name in fields:
                if fields[name] is None:
                    fields[name] = user_id
            elif name != "user_id" and name not in properties:
                properties[name] = user_id
        return EvalContext(
            user_id,
            email=fields["email"] or "",
            plan=fields["plan"] or "",
            country=fields["country"] or "",
            properties=properties,
        )


def _context_json(ctx: EvalContext, with_user: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"user_id": ctx.user_id} if with_user else {}
    data.update(email=ctx.email, plan=ctx.plan, country=ctx.country, properties=ctx.properties)
    return data


def _result_json(result: EvalResult) -> dict[str, Any]:
    return {"enabled": result.enabled, "variant": result.variant, "reason": result.reason, "value": result.value}


def _print_json(data: object, out: TextIO) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode(getattr(out, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        # A character the stream cannot encode (PYTHONIOENCODING=ascii, LC_ALL=C), or a lone surrogate
        # from a file name that is not UTF-8: JSON's own \u escapes are valid JSON in any encoding,
        # where the stream's backslashreplace would write `\xe9`, which is not.
        text = json.dumps(data, indent=2, ensure_ascii=True)
    out.write(text + "\n")


def _number(x: float) -> str:
    return f"{x:g}" if abs(x) >= 1e-4 or x == 0 else repr(x)


def _short(value: object, limit: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _synthetic_users(n: int) -> str:
    return "user-0" if n == 1 else f"user-0 .. user-{n - 1}"


def _flag_dicts(evaluator: FlagEvaluator) -> dict[str, dict[str, Any]]:
    """Every flag in wire form (duplicates resolved), by key, in document order."""
    return {flag["key"]: flag for flag in evaluator.document()["flags"]}


def _bucket_attributes(flags: Mapping[str, Mapping[str, Any]], key: str) -> set[str]:
    """The `bucket_by` attributes a flag's answer hashes: its own and its prerequisites' (transitively)."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [key]
    while todo:
        current = todo.pop()
        flag = flags.get(current)
        if current in seen or flag is None:
            continue
        seen.add(current)
        found.add(flag.get("bucket_by") or "user_id")
        todo.extend(p["key"] for p in flag.get("prerequisites") or [])
    found.discard("user_id")
    return found


def _weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={_number(w)}" for name, w in sorted(weights.items()))


def _percentage(flag: Mapping[str, Any]) -> float:
    """The flag's percentage as evaluation reads it: clamped to [0, 100] (docs/spec.md §2 step 5)."""
    raw = flag.get("percentage")
    return min(max(float(raw if raw is not None else 0), 0.0), 100.0)


def _answer(enabled: bool, variant: str, reason: str, value: object = None, with_value: bool = False) -> str:
    text = ("ON" if enabled else "off") + (f" {variant!r}" if variant else "") + f" ({reason})"
    return text + (f" = {_short(value, 50)}" if with_value else "")


def _answer_of(result: EvalResult, with_value: bool = False) -> str:
    return _answer(result.enabled, result.variant, result.reason, result.value, with_value)


# ---------------------------------------------------------------------------------------------
# eval


def _cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    evaluator, data = _load_with_data(args.file)
    ctx = _Attributes.from_args(args).context(args.user_id)
    result = evaluator.evaluate(args.key, ctx)
    explanation = evaluator.explain(args.key, ctx)
    if args.json:
        _print_json(
            {
                "flag": args.key,
                "context": _context_json(ctx),
                "result": _result_json(result),
                "explanation": explanation,
                "warnings": [p.to_json() for p in _warnings(evaluator, data)],
            },
            out,
        )
        return EXIT_OK if explanation is not None else EXIT_ERROR
    for problem in _warnings(evaluator, data):
        print(f"{args.file}: {problem.describe()}", file=sys.stderr)
    flag = _flag_dicts(evaluator).get(args.key)
    if explanation is None or flag is None:
        raise _CommandError(_not_found(args.file, args.key, evaluator))
    _print_explanation(ctx, explanation, flag, out)
    return EXIT_OK


#: How many of the file's flag keys an "unknown flag" error lists.
_LISTED_KEYS = 10


def _not_found(file: str, key: str, evaluator: FlagEvaluator) -> str:
    keys = evaluator.keys()
    listed = ", ".join(_clip(k) for k in keys[:_LISTED_KEYS]) or "none"
    if len(keys) > _LISTED_KEYS:
        listed += f", … and {len(keys) - _LISTED_KEYS} more"
    return f"{file}: no flag {_repr(key)} (flags: {listed})"


def _who(ctx: EvalContext) -> str:
    who = [f"user_id={ctx.user_id!r}"]
    who += [f"{name}={value!r}" for name in _BUILTIN_FIELDS if (value := getattr(ctx, name))]
    who += [f"{name}={value!r}" for name, value in ctx.properties.items()]
    return " ".join(who)


def _print_explanation(ctx: EvalContext, explanation: Mapping[str, Any], flag: Mapping[str, Any], out: TextIO) -> None:
    print(f"{explanation['flag']} for {_who(ctx)}", file=out)
    state = "ON" if explanation["enabled"] else "off"
    variant = f" variant={explanation['variant']!r}" if explanation["variant"] else ""
    print(f"  result: {state}{variant} (reason: {explanation['reason']})", file=out)
    print(f"  value: {_short(explanation['value'], 100)}", file=out)
    reason: str = explanation["reason"]
    bucket_by: str = explanation["bucket_by"]
    if bucket_by != "user_id":
        print(f"  bucket_by {bucket_by}: {explanation['bucketing_value']!r}", file=out)
    if reason == "disabled":
        print("  the flag is disabled (enabled: false): nothing else is looked at", file=out)
        return
    if not _print_prerequisites(explanation, flag, out):
        return
    rules: list[Mapping[str, Any]] = explanation["rules"]
    wire_rules: list[Mapping[str, Any]] = flag.get("rules") or []
    if rules:
        print("  rules, in the order tried (priority, then file order):", file=out)
    for rule in rules:
        wire = wire_rules[rule["index"]] if rule["index"] < len(wire_rules) else {}
        _print_rule(rule, wire, bucket_by, out)
    _print_rollout(explanation, flag, out)
    _print_variant(explanation, flag, out)


def _print_prerequisites(explanation: Mapping[str, Any], flag: Mapping[str, Any], out: TextIO) -> bool:
    """Prints the prerequisite checks; False when they ended the walk."""
    checks: list[Mapping[str, Any]] = explanation["prerequisites"]
    if explanation["reason"] == "prerequisite_failed" and not checks:
        print(
            "  the flag is on a prerequisite cycle, or its prerequisite chain is deeper than 32 flags: "
            "it always answers prerequisite_failed (see the warnings)",
            file=out,
        )
        return False
    if checks:
        print("  prerequisites, in order:", file=out)
    for check in checks:
        mark = "yes" if check["passed"] else "no "
        needs = f"; needs a variant in {check['variants']!r}" if check["variants"] else ""
        if check["reason"] == "not_found":
            got = "not in the file"
        else:
            got = _answer(check["enabled"], check["variant"], check["reason"])
        print(f"    {mark} {check['key']}: {got}{needs}", file=out)
    if explanation["reason"] == "prerequisite_failed":
        print("  a prerequisite failed: the flag is off, and its rules and rollout are not looked at", file=out)
        return False
    return True


def _print_rule(rule: Mapping[str, Any], wire: Mapping[str, Any], bucket_by: str, out: TextIO) -> None:
    name = f" {_quote(rule['name'], None)}" if rule["name"] else ""
    target = f"a pick from {_weights(wire['variants'])}" if wire.get("variants") else f"variant {rule['variant']!r}"
    rollout: Mapping[str, Any] | None = rule["rollout"]
    share = ""
    if rollout is not None:
        threshold = _number(rollout["percentage"])
        if rollout["bucket"] is None:
            share = f"the {bucket_by} is empty: outside the rule's {threshold} % rollout"
        else:
            inside = "<" if rollout["included"] else ">="
            where = "inside" if rollout["included"] else "outside"
            share = f"bucket {rollout['bucket']:.4f} {inside} {threshold}: {where} the rule's rollout"
    if not rule["matched"]:
        verdict = "no match"
    elif rule["applied"]:
        verdict = f"MATCH, {share} -> {target}" if share else f"MATCH -> {target}"
    elif share:
        verdict = f"matches, but {share}: next rule"
    else:
        verdict = "matches, but the rule's percentage is 0 (it applies to no one): next rule"
    print(f"    rules[{rule['index']}]{name} priority {rule['priority']}: {verdict}", file=out)
    if not rule["conditions"]:
        print("      (no conditions: matches everyone)", file=out)
    for condition in rule["conditions"]:
        mark = "yes" if condition["matched"] else "no "
        print(f"      {mark} {_condition_text(condition)}  ({_condition_detail(condition)})", file=out)


_SEGMENT_OPERATORS = ("in_segment", "not_in_segment")


def _condition_text(condition: Mapping[str, Any]) -> str:
    if condition["operator"] in _SEGMENT_OPERATORS:
        return f"{condition['operator']} {condition['values']!r}"
    return f"{condition['attribute']} {condition['operator']} {condition['values']!r}"


def _condition_detail(condition: Mapping[str, Any]) -> str:
    if condition["operator"] in _SEGMENT_OPERATORS:
        segments: list[Mapping[str, Any]] | None = condition.get("segments")
        if not segments:
            return "no such segment, or it is on a segment cycle: no one is in it" if condition["values"] else "none"
        parts = [
            f"not in {s['key']!r}" if s["rule"] is None else f"in {s['key']!r} through its rules[{s['rule']}]"
            for s in segments
        ]
        listed = {s["key"] for s in segments}
        parts += [f"{key!r}: no such segment" for key in condition["values"] if key not in listed]
        return "; ".join(parts)
    actual = condition["actual"]
    instant: Mapping[str, Any] | None = condition.get("instant")
    if instant is not None:
        compared = f"compared to {_instant(instant['compared_to'])}"
        if condition["attribute"] == "now" and actual == "":
            return f"now is {_instant(instant['actual'])} by the clock; {compared}"
        moment = _instant(instant["actual"])
        return f"user has {actual!r}" + (f" = {moment}" if moment != actual else "") + f"; {compared}"
    if condition["operator"] in ("before", "after"):
        return f"user has {actual!r}: not both instants, so false"
    return f"user has {actual!r}"


def _instant(seconds: float) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{_number(seconds)} s since the epoch"
    return moment.isoformat().replace("+00:00", "Z")


def _print_rollout(explanation: Mapping[str, Any], flag: Mapping[str, Any], out: TextIO) -> None:
    rollout: Mapping[str, Any] | None = explanation["rollout"]
    reason = explanation["reason"]
    has_rules = bool(flag.get("rules"))
    if rollout is not None:
        threshold = _number(rollout["percentage"])
        if rollout["bucket"] is None:
            print(
                f"  rollout: the {explanation['bucket_by']} is empty: outside every partial rollout "
                f"(percentage {threshold})",
                file=out,
            )
            return
        inside = "<" if rollout["included"] else ">="
        verdict = "inside the rollout" if rollout["included"] else "outside the rollout"
        print(f"  rollout: bucket {rollout['bucket']:.4f} {inside} percentage {threshold}: {verdict}", file=out)
    elif reason == "no_match":
        print(
            "  no rule applied, and the flag has rules and percentage 0: off (no_match); "
            '"percentage": 100 would give the flag to everyone no rule takes',
            file=out,
        )
    elif reason == "default":
        if has_rules:
            print("  no rule applied, and percentage 100: everyone else gets the flag", file=out)
        else:
            print("  no rules, and no partial rollout (percentage 0 or 100): everyone gets the flag", file=out)


def _print_variant(explanation: Mapping[str, Any], flag: Mapping[str, Any], out: TextIO) -> None:
    pick: Mapping[str, Any] | None = explanation["variant_pick"]
    if pick is not None:
        if pick["point"] is None:
            print(
                f"  variant: the {explanation['bucket_by']} is empty: no weighted pick, "
                f"default_variant {pick['picked']!r}",
                file=out,
            )
            return
        weights = ", ".join(f"{name}={_number(weight)}" for name, weight in pick["weights"])
        print(
            f"  variant: point {pick['point']:.4f} of total {_number(pick['total'])} over [{weights}] "
            f"-> {pick['picked']!r}",
            file=out,
        )
    elif explanation["enabled"] and explanation["reason"] != "rule_match":
        print(f"  variant: no weighted split: default_variant {flag.get('default_variant', '')!r}", file=out)
    elif not explanation["enabled"] and explanation["variant"]:
        print(f"  variant: off_variant {explanation['variant']!r}", file=out)


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


def _describe_rule(index: int, rule: Mapping[str, Any]) -> str:
    name = f" {_quote(rule['name'], None)}" if rule.get("name") else ""
    conditions = [
        _condition_text({"attribute": c.get("attribute"), "operator": c["operator"], "values": c.get("values") or []})
        for c in rule.get("conditions") or []
    ]
    who = " and ".join(conditions) if conditions else "everyone"
    percentage = rule.get("percentage")
    if percentage is not None and percentage != 100:
        who = f"{_number(min(max(float(percentage), 0.0), 100.0))} % of {who}"
    target = f"split {_weights(rule['variants'])}" if rule.get("variants") else repr(rule.get("variant") or "")
    return f"rules[{index}]{name} priority {rule.get('priority') or 0}: {who} -> {target}"


def _rule_order(rules: Sequence[Mapping[str, Any]]) -> list[int]:
    return sorted(range(len(rules)), key=lambda j: -(rules[j].get("priority") or 0))


def _describe_flag(flag: Mapping[str, Any]) -> str:
    parts = ["enabled" if flag["enabled"] else "disabled (enabled: false)"]
    bucket_by = flag.get("bucket_by") or "user_id"
    if bucket_by != "user_id":
        parts.append(f"bucket_by {bucket_by}")
    for prerequisite in flag.get("prerequisites") or []:
        variants = prerequisite.get("variants")
        parts.append(f"needs {prerequisite['key']}" + (f" in {variants!r}" if variants else ""))
    percentage = _percentage(flag)
    rules = flag.get("rules") or []
    if 0 < percentage < 100:
        parts.append(f"rollout {_number(percentage)} %")
    elif percentage == 0 and rules:
        parts.append("percentage 0: only the contexts a rule takes")
    else:
        parts.append(f"percentage {_number(percentage)}: everyone" + (" no rule takes" if rules else ""))
    parts.append(_plural(len(rules), "rule"))
    if flag.get("variants"):
        parts.append("variants " + _weights(flag["variants"]))
    for name in ("default_variant", "off_variant"):
        if flag.get(name):
            parts.append(f"{name} {flag[name]!r}")
    return "; ".join(parts)


@dataclass
class _Outcome:
    enabled: bool
    variant: str
    value: Any
    users: int = 0


def _cmd_rollout(args: argparse.Namespace, out: TextIO) -> int:
    evaluator = _load(args.file)
    flags = _flag_dicts(evaluator)
    flag = flags.get(args.key)
    if flag is None:
        raise _CommandError(_not_found(args.file, args.key, evaluator))
    n: int = args.users
    given = _Attributes.from_args(args)
    synthetic = sorted(_bucket_attributes(flags, args.key))
    rules: list[Mapping[str, Any]] = flag.get("rules") or []
    outcomes: dict[tuple[bool, str], _Outcome] = {}
    reasons: Counter[str] = Counter()
    by_rule: Counter[int] = Counter()
    for i in range(n):
        ctx = given.context(f"user-{i}", synthetic)
        if rules:
            explanation = evaluator.explain(args.key, ctx)
            assert explanation is not None  # the flag exists
            enabled, variant, reason = explanation["enabled"], explanation["variant"], explanation["reason"]
            value = explanation["value"]
            if reason == "rule_match":
                by_rule[explanation["rules"][-1]["index"]] += 1
        else:
            result = evaluator.evaluate(args.key, ctx)
            enabled, variant, reason, value = result.enabled, result.variant, result.reason, result.value
        outcome = outcomes.setdefault((enabled, variant), _Outcome(enabled, variant, value))
        outcome.users += 1
        reasons[reason] += 1
    rows = sorted(outcomes.values(), key=lambda o: (not o.enabled, o.variant))
    enabled_users = sum(o.users for o in rows if o.enabled)
    anonymous = evaluator.evaluate(args.key, given.context(""))
    order = _rule_order(rules)
    if args.json:
        _print_json(
            {
                "flag": args.key,
                "users": n,
                "context": _context_json(given.context(""), with_user=False),
                "bucket_by": flag.get("bucket_by") or "user_id",
                "synthetic_attributes": ["user_id", *synthetic],
                "enabled": enabled_users,
                "outcomes": [
                    {
                        "enabled": o.enabled,
                        "variant": o.variant,
                        "value": o.value,
                        "users": o.users,
                        "share": o.users / n,
                    }
                    for o in rows
                ],
                "reasons": dict(sorted(reasons.items())),
                "rules": [{"index": j, "name": rules[j].get("name") or "", "users": by_rule[j]} for j in order],
                "anonymous": _result_json(anonymous),
            },
            out,
        )
        return EXIT_OK
    also = f"; the same id in {', '.join(synthetic)}" if synthetic else ""
    print(f"{args.key} over {n} synthetic users ({_synthetic_users(n)}{also}) from {args.file}", file=out)
    print(f"  {_describe_flag(flag)}", file=out)
    for j in order:
        print(f"  {_describe_rule(j, rules[j])}", file=out)
    with_values = bool(flag.get("values"))
    labels = []
    for o in rows:
        label = ("on  " + (repr(o.variant) if o.variant else "(no variant)")) if o.enabled else "off"
        if not o.enabled and o.variant:
            label += f" {o.variant!r}"
        if with_values:
            label += f" = {_short(o.value, 40)}"
        labels.append(label)
    width = max([len("outcome"), *map(len, labels)])
    print(f"  {'outcome':<{width}}  {'users':>8}  {'share':>7}", file=out)
    for label, o in zip(labels, rows, strict=True):
        print(f"  {label:<{width}}  {o.users:>8}  {o.users / n:>7.2%}  {_bar(o.users / n, out)}", file=out)
    summary = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
    print(f"  enabled for {enabled_users} of {n} ({enabled_users / n:.2%}); by reason: {summary}", file=out)
    if rules:
        taken = ", ".join(f"rules[{j}] {by_rule[j]}" for j in order)
        print(f"  rule matches by rule: {taken}", file=out)
    empty = ", ".join(["user_id", *synthetic])
    print(f"  an anonymous context (empty {empty}): {_answer_of(anonymous, with_values)}", file=out)
    return EXIT_OK


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
    value_changed: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def users_changed(self) -> int:
        return self.turned_on + self.turned_off + self.variant_changed + self.value_changed

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key}
        if self.status == "changed":
            data["fields"] = self.fields
        data.update(
            users_changed=self.users_changed,
            turned_on=self.turned_on,
            turned_off=self.turned_off,
            variant_changed=self.variant_changed,
            value_changed=self.value_changed,
            examples=self.examples,
        )
        return data


_EXAMPLES = 5


def _sample(
    change: _FlagChange, old: FlagEvaluator, new: FlagEvaluator, synthetic: Collection[str], args: argparse.Namespace
) -> None:
    given = _Attributes.from_args(args)
    for i in range(args.users):
        ctx = given.context(f"user-{i}", synthetic)
        before, after = old.evaluate(change.key, ctx), new.evaluate(change.key, ctx)
        if before.enabled != after.enabled:
            if after.enabled:
                change.turned_on += 1
            else:
                change.turned_off += 1
        elif before.variant != after.variant:
            change.variant_changed += 1
        elif before.value != after.value:
            change.value_changed += 1
        else:
            continue
        if len(change.examples) < _EXAMPLES:
            change.examples.append(ctx.user_id)


def _field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    names = [*before, *(name for name in after if name not in before)]
    return {n: {"old": before.get(n), "new": after.get(n)} for n in names if before.get(n) != after.get(n)}


def _by_key(items: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {item["key"]: item for item in items}


def _cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    old, new = _load(args.old), _load(args.new)
    old_doc, new_doc = old.document(), new.document()
    old_defs, new_defs = _flag_dicts(old), _flag_dicts(new)
    changes: list[_FlagChange] = [_FlagChange(k, "added") for k in new_defs if k not in old_defs]
    changes += [_FlagChange(k, "removed") for k in old_defs if k not in new_defs]
    same: list[_FlagChange] = []
    for key, after in new_defs.items():
        before = old_defs.get(key)
        if before is None:
            continue
        fields = _field_changes(before, after)
        (changes if fields else same).append(_FlagChange(key, "changed", fields))
    for change in [*changes, *same]:
        synthetic = _bucket_attributes(old_defs, change.key) | _bucket_attributes(new_defs, change.key)
        _sample(change, old, new, synthetic, args)
    # A flag whose definition did not change can still answer differently through its segments or
    # prerequisites: it is listed as changed, with no fields.
    changes += [c for c in same if c.users_changed]
    unchanged = [c.key for c in same if not c.users_changed]
    old_segments, new_segments = _by_key(old_doc.get("segments") or []), _by_key(new_doc.get("segments") or [])
    segments: dict[str, list[Any]] = {
        "added": [k for k in new_segments if k not in old_segments],
        "removed": [k for k in old_segments if k not in new_segments],
        "changed": [
            {"key": k, "old": old_segments[k], "new": new_segments[k]}
            for k in new_segments
            if k in old_segments and old_segments[k] != new_segments[k]
        ],
    }
    metadata = _field_changes(old_doc.get("metadata") or {}, new_doc.get("metadata") or {})
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
                "segments": segments,
                "metadata": metadata,
            },
            out,
        )
        return EXIT_OK
    n = args.users
    print(f"{args.old} -> {args.new}: answers compared for {n} synthetic users ({_synthetic_users(n)})", file=out)
    if not changes and not metadata and not any(segments.values()):
        print(f"  no flag changed ({_plural(len(unchanged), 'flag')} identical)", file=out)
        return EXIT_OK
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for change in changes:
        print(f"{marks[change.status]} {change.status:<7} {change.key}", file=out)
        if change.status == "changed" and not change.fields:
            print("    definition unchanged: its answers change through its segments or prerequisites", file=out)
        for name, values in change.fields.items():
            for line in _field_lines(name, *_present_values(values)):
                print(f"    {line}", file=out)
        if "bucket_by" in change.fields:
            print(
                "    note: the synthetic users carry the same id in every attribute, so this sample cannot show "
                "who is re-bucketed; with real data expect most contexts to move",
                file=out,
            )
        if change.users_changed:
            share = change.users_changed / n
            print(
                f"    answers change for {change.users_changed} of {n} users ({share:.1%}): "
                f"off->on {change.turned_on}, on->off {change.turned_off}, variant {change.variant_changed}, "
                f"value {change.value_changed}; e.g. {', '.join(change.examples)}",
                file=out,
            )
        else:
            print(f"    no sampled user's answer changes (of {n})", file=out)
    for mark, status in (("+", "added"), ("-", "removed")):
        for key in segments[status]:
            print(f"{mark} segment {status:<7} {key}", file=out)
    for segment in segments["changed"]:
        print(f"~ segment changed {segment['key']}", file=out)
        for line in _field_lines("rules", segment["old"].get("rules"), segment["new"].get("rules")):
            print(f"    {line}", file=out)
    for name, values in metadata.items():
        for line in _field_lines(f"metadata.{name}", *_present_values(values)):
            print(f"~ document {line}", file=out)
    if unchanged:
        print(f"= unchanged: {', '.join(unchanged)}", file=out)
    return EXIT_OK


_ABSENT = object()


def _present_values(change: Mapping[str, Any]) -> tuple[object, object]:
    """A field change's old and new value; None is an absent field (the wire form has no nulls there)."""
    old, new = change["old"], change["new"]
    return (_ABSENT if old is None else old), (_ABSENT if new is None else new)


def _present(value: object) -> str:
    return "(absent)" if value is _ABSENT else _short(value, 100)


def _field_lines(path: str, before: object, after: object) -> list[str]:
    """One line per changed leaf: objects member by member and lists item by item, each named by its
    JSON path (`rules[0].conditions[1].values`, `values.small`), so a long field still shows what moved."""
    if isinstance(before, dict) and isinstance(after, dict):
        members = [*before, *(m for m in after if m not in before)]
        return [
            line for m in members for line in _field_lines(f"{path}.{m}", before.get(m, _ABSENT), after.get(m, _ABSENT))
        ]
    if isinstance(before, list) and isinstance(after, list) and before and after:
        lines: list[str] = []
        for i in range(max(len(before), len(after))):
            old = before[i] if i < len(before) else _ABSENT
            new = after[i] if i < len(after) else _ABSENT
            lines += _field_lines(f"{path}[{i}]", old, new)
        return lines
    return [] if before == after else [f"{path}: {_present(before)} -> {_present(after)}"]


# ---------------------------------------------------------------------------------------------
# migrate: what answers differently under format 2 than under format 1 (docs/spec.md, "What changed")


_U32_MAX = 0xFFFFFFFF


def _hash_u32(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big")


def _format1_bucket(flag_key: str, bucketing_value: str) -> float:
    """The bucket of docs/spec.md §2.1, which format 1 also computed for an empty value."""
    return _hash_u32(f"{flag_key}:{bucketing_value}") / _U32_MAX * 100


def _format1_pick(flag_key: str, variants: Mapping[str, float], default_variant: str, bucketing_value: str) -> str:
    """The weighted pick of docs/spec.md §2.1, which format 1 also made for an empty value."""
    names = sorted(variants)
    total = 0.0
    for name in names:
        total += float(variants[name])
    if total <= 0:
        return default_variant
    x = _hash_u32(f"{flag_key}:variant:{bucketing_value}") / _U32_MAX * total
    running, last_positive = 0.0, default_variant
    for name in names:
        running += float(variants[name])
        if variants[name] > 0:
            last_positive = name
        if running > x:
            return name
    return last_positive


@dataclass
class _Cause:
    kind: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix}


@dataclass
class _Migration:
    """One flag's answers under both readings."""

    key: str
    causes: list[_Cause] = field(default_factory=list)
    users_changed: int = 0
    anonymous_changed: bool = False
    examples: list[tuple[EvalContext, EvalResult, EvalResult]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "causes": [c.to_json() for c in self.causes],
            "users_changed": self.users_changed,
            "anonymous_changed": self.anonymous_changed,
            "examples": [
                {"context": _context_json(ctx), "format1": _result_json(one), "format2": _result_json(two)}
                for ctx, one, two in self.examples
            ],
        }


class _Format1Reading:
    """Builds the copies of a document that the engine evaluates as format 1 read it.

    `named` is for contexts with a bucketing value, `anonymous` for the empty context. The only
    differences between the readings for a document that format 1 could express are docs/spec.md's
    "What changed" 1-3: step 5 on a flag with rules and percentage <= 0, an empty bucketing value in a
    partial rollout and in a weighted pick, and percentages outside [0, 100].
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.named = json.loads(json.dumps(document))
        self.anonymous = json.loads(json.dumps(document))
        self.causes: dict[str, list[_Cause]] = {}
        self.anonymous_causes: dict[str, list[_Cause]] = {}
        self.notes: list[str] = []
        self.partial_anonymous: set[str] = set()
        for named, anonymous in zip(self.named["flags"], self.anonymous["flags"], strict=True):
            self._adjust(named, anonymous)

    def _adjust(self, named: dict[str, Any], anonymous: dict[str, Any]) -> None:
        key: str = named["key"]
        if not named["enabled"]:
            return
        raw = named.get("percentage")
        p = float(raw) if raw is not None else 0.0
        rules: list[Mapping[str, Any]] = named.get("rules") or []
        bucket_by = named.get("bucket_by") or "user_id"
        causes = self.causes.setdefault(key, [])
        anonymous_causes = self.anonymous_causes.setdefault(key, [])
        if rules and p <= 0:
            clamp = f"percentage {_number(p)} now clamps to 0; " if p < 0 else ""
            causes.append(
                _Cause(
                    "rules_without_rollout",
                    f"{clamp}the flag has rules and percentage {_number(max(p, 0))}: format 1 gave every context no "
                    'rule takes the flag (reason "default"); format 2 answers no_match (off)',
                    'set "percentage": 100 to keep the format-1 answer (everyone no rule takes gets the flag); '
                    "leave it if only the contexts the rules take should get it (the format-2 reading)",
                )
            )
            named["percentage"] = anonymous["percentage"] = 100
        elif p < 0 or p > 100:
            # Format 1 read both as "everyone": so does format 2 (clamped to 0 without rules, or to 100).
            self.notes.append(
                f"{key}: percentage {_number(p)} now clamps to {0 if p < 0 else 100} (with a warning); "
                "its answers do not change: format 1 also served everyone"
            )
            named["percentage"] = anonymous["percentage"] = 100
        if 0 < p < 100:
            bucket = _format1_bucket(key, "")
            if bucket < p:
                variant = self._anonymous_variant(named)
                lowest = min((r.get("priority") or 0 for r in rules), default=0)
                rule = {
                    "name": "anonymous, as in format 1",
                    "conditions": [{"attribute": bucket_by, "operator": "eq", "values": [""]}],
                    "variant": variant,
                    "priority": lowest,
                }
                anonymous_causes.append(
                    _Cause(
                        "anonymous_rollout",
                        f'format 1 hashed every context with an empty {bucket_by} as "" and the bucket of '
                        f'"{key}:" is {bucket:.4f} < {_number(p)}: all of them were inside the rollout; format 2 '
                        "keeps them outside every partial rollout",
                        f"give those contexts a {bucket_by} of their own (a session or device id), or, to keep the "
                        f"format-1 answer exactly, add this rule at the end of rules: {_short(rule, 400)}",
                    )
                )
                anonymous["percentage"] = 100
                self.partial_anonymous.add(key)
                if named.get("variants") and not self._rule_picks(named):
                    anonymous["default_variant"] = variant
                return
        if named.get("variants") and not self._rule_picks(named) and not (0 < p < 100):
            variant = self._anonymous_variant(named)
            default_variant = named.get("default_variant") or ""
            if variant != default_variant:
                anonymous_causes.append(
                    _Cause(
                        "anonymous_variant",
                        f'format 1 gave a context with an empty {bucket_by} the weighted pick for "" '
                        f"({variant!r}); format 2 gives it default_variant {default_variant!r}",
                        f'set "default_variant": {_quote(variant, None)} to keep {variant!r}: while the weights are '
                        "positive, default_variant only serves contexts without a bucketing value",
                    )
                )
                anonymous["default_variant"] = variant

    @staticmethod
    def _rule_picks(flag: Mapping[str, Any]) -> bool:
        """Rule splits are format 2's own: their empty-value pick has no format-1 reading to keep."""
        return any(rule.get("variants") for rule in flag.get("rules") or [])

    @staticmethod
    def _anonymous_variant(flag: Mapping[str, Any]) -> str:
        default_variant = flag.get("default_variant") or ""
        variants = flag.get("variants")
        return _format1_pick(flag["key"], variants, default_variant, "") if variants else default_variant


def _cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    evaluator = _load(args.file)
    document = evaluator.document()
    reading = _Format1Reading(document)
    named, anonymous = FlagEvaluator(), FlagEvaluator()
    try:
        named.update_json(json.dumps(reading.named))
        anonymous.update_json(json.dumps(reading.anonymous))
    except ConfigError as error:  # pragma: no cover - the copies only change numbers and strings
        raise _CommandError(f"{args.file}: cannot build the format-1 reading: {error}") from error
    flags = _flag_dicts(evaluator)
    synthetic = sorted({name for key in flags for name in _bucket_attributes(flags, key)})
    given = _Attributes()
    contexts = [given.context(f"user-{i}", synthetic) for i in range(args.users)]
    empty = EvalContext("")
    found: list[_Migration] = []
    for key in flags:
        migration = _Migration(key)
        two = evaluator.evaluate(key, empty)
        one = anonymous.evaluate(key, empty)
        if key in reading.partial_anonymous and one.reason == "default":
            one = EvalResult(one.enabled, one.variant, "percentage", one.value)  # format 1's reason for it
        if one != two:
            migration.anonymous_changed = True
            migration.examples.append((empty, one, two))
        for ctx in contexts:
            one, two = named.evaluate(key, ctx), evaluator.evaluate(key, ctx)
            if one != two:
                migration.users_changed += 1
                if len(migration.examples) < _EXAMPLES:
                    migration.examples.append((ctx, one, two))
        if not (migration.users_changed or migration.anonymous_changed):
            continue
        own = list(reading.causes.get(key, []))
        if migration.anonymous_changed:
            own += reading.anonymous_causes.get(key, [])
        if not own:
            prerequisites = [p["key"] for p in flags[key].get("prerequisites") or []]
            own.append(
                _Cause(
                    "prerequisite",
                    f"its own definition reads the same, but a prerequisite ({', '.join(prerequisites)}) "
                    "answers differently",
                    "fix the prerequisite (see its entry)",
                )
            )
        migration.causes = own
        found.append(migration)
    if args.json:
        _print_json(
            {
                "file": args.file,
                "users": args.users,
                "differs": bool(found),
                "flags": [m.to_json() for m in found],
                "notes": reading.notes,
            },
            out,
        )
        return EXIT_ERROR if found else EXIT_OK
    checked = f"{_plural(len(flags), 'flag')} over {args.users} synthetic users ({_synthetic_users(args.users)}) "
    checked += "and the empty context"
    if not found:
        print(f"{args.file}: every flag answers as it did in format 1 ({checked})", file=out)
    else:
        print(f"{args.file}: {_plural(len(found), 'flag')} answer differently in format 2 ({checked})", file=out)
    for migration in found:
        with_values = bool(flags[migration.key].get("values"))
        print(f"{migration.key}:", file=out)
        for cause in migration.causes:
            print(f"    {cause.message}", file=out)
        if not migration.users_changed:
            counts = f"the empty context only (none of the {args.users} synthetic users)"
        else:
            counts = f"{migration.users_changed} of {args.users} synthetic users"
            counts += " and the empty context" if migration.anonymous_changed else ""
        print(f"    differs for {counts}, e.g.", file=out)
        for ctx, one, two in migration.examples:
            who = f"user_id={ctx.user_id!r}" if ctx.user_id else "the empty context"
            print(
                f"      {who}: format 1 {_answer_of(one, with_values)}, format 2 {_answer_of(two, with_values)}",
                file=out,
            )
        for cause in migration.causes:
            print(f"    fix: {cause.fix}", file=out)
    for note in reading.notes:
        print(f"note: {note}", file=out)
    return EXIT_ERROR if found else EXIT_OK


# ---------------------------------------------------------------------------------------------
# stale: flags a team can delete


def _split_is_fixed(variants: Mapping[str, Any] | None) -> bool:
    """A weighted split that always picks the same variant: none, or one variant with weight."""
    return len([w for w in (variants or {}).values() if w > 0]) <= 1


def _constant_answer(flag: Mapping[str, Any]) -> str | None:
    """Why every context gets the same answer from `flag`, or None when some contexts may differ.

    Static reasoning over the definition and docs/spec.md §2, conservative: a flag with prerequisites
    depends on other flags, so only a disabled one counts as constant.
    """
    if not flag.get("enabled", False):
        return "disabled: every context gets the off answer"
    if flag.get("prerequisites"):
        return None
    rules = sorted(enumerate(flag.get("rules") or []), key=lambda item: -int(item[1].get("priority", 0)))
    if rules:
        _, first = rules[0]
        catch_all = not first.get("conditions") and min(max(first.get("percentage", 100), 0), 100) >= 100
        if catch_all and _split_is_fixed(first.get("variants")):
            return f"rules[{rules[0][0]}] matches every context first and always serves the same variant"
        return None
    percentage = min(max(flag.get("percentage", 0), 0), 100)
    if percentage in (0, 100) and _split_is_fixed(flag.get("variants")):
        return "no rules and no partial rollout: every context gets the flag, with the same variant"
    return None


def _parse_expiry(value: object) -> datetime | None:
    """`metadata.expires` as an instant: an ISO date (the end of that day, UTC) or an ISO date-time."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value)
            return day.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _usage_counts(source: str) -> dict[str, float]:
    """Evaluations per flag from a Prometheus text exposition (`ferroflag.metrics`): a file, '-' or a URL."""
    if source.startswith(("http://", "https://")):
        import base64
        import urllib.request
        from urllib.parse import unquote, urlsplit, urlunsplit

        parts = urlsplit(source)
        headers = {}
        if parts.username is not None:
            # urllib takes no userinfo in a URL: it goes as Basic auth, as a browser would send it.
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        if parts.hostname and ":" in parts.hostname:
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        request = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                data = response.read(MAX_FILE_BYTES + 1)
        except (OSError, ValueError) as error:
            # The error text may repeat the URL; only its redacted form is shown.
            reason = getattr(error, "reason", None)
            detail = f" ({reason})" if isinstance(reason, str | OSError) else ""
            raise _CommandError(
                f"--usage: cannot read {_quote(_redacted_url(source))}: {type(error).__name__}{detail}"
            ) from error
    else:
        try:
            data = _read(source)
        except _ReadError as error:
            raise _CommandError(f"--usage {_quote(source)}: {error}") from error
    counts: dict[str, float] = {}
    seen_metric = False
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("ferroflag_evaluations_total{"):
            continue
        seen_metric = True
        labels, _, value = line.rpartition("} ")
        flag = _prometheus_label(labels, "flag")
        try:
            n = float(value)
        except ValueError:
            continue
        if flag is not None:
            counts[flag] = counts.get(flag, 0.0) + n
    if not seen_metric and b"ferroflag_flags" not in data:
        raise _CommandError(
            f"--usage {_quote(source)}: no ferroflag metrics in it (serve them with ferroflag.metrics.register)"
        )
    return counts


def _prometheus_label(labels: str, name: str) -> str | None:
    """One label's value from `metric{a="x",b="y"`, with the exposition format's escapes undone."""
    marker = f'{name}="'
    start = labels.find("{" + marker)
    start = start + 1 if start >= 0 else labels.find("," + marker) + 1
    if start <= 0:
        return None
    i, out = start + len(marker), []
    while i < len(labels):
        c = labels[i]
        if c == "\\" and i + 1 < len(labels):
            out.append({"n": "\n", "\\": "\\", '"': '"'}.get(labels[i + 1], labels[i + 1]))
            i += 2
            continue
        if c == '"':
            return "".join(out)
        out.append(c)
        i += 1
    return None


def _redacted_url(url: str) -> str:
    """A URL without its userinfo and query string (they may carry credentials)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _cmd_stale(args: argparse.Namespace, out: TextIO) -> int:
    evaluator = _load(args.file)
    flags = _flag_dicts(evaluator)
    now = args.now or datetime.now(timezone.utc)
    usage = _usage_counts(args.usage) if args.usage else None
    report: list[dict[str, Any]] = []
    for key, flag in flags.items():
        reasons: list[str] = []
        expires = (flag.get("metadata") or {}).get("expires")
        moment = _parse_expiry(expires)
        if moment is not None and moment < now:
            reasons.append(f"expired on {expires}")
        elif expires is not None and moment is None:
            reasons.append(f"metadata.expires {_quote(str(expires))} is not an ISO date; cannot tell")
        constant = _constant_answer(flag)
        if constant:
            reasons.append(constant)
        if usage is not None and usage.get(key, 0) == 0:
            reasons.append("never evaluated by the process the metrics came from")
        if reasons:
            report.append({"key": key, "reasons": reasons, "owner": (flag.get("metadata") or {}).get("owner")})
    if args.json:
        _print_json({"file": args.file, "now": now.isoformat(), "flags": report, "checked": len(flags)}, out)
        return EXIT_OK
    checked = _plural(len(flags), "flag")
    if not report:
        print(f"{args.file}: none of {checked} looks stale", file=out)
        return EXIT_OK
    print(f"{args.file}: {_plural(len(report), 'flag')} of {checked} may be deleted or simplified", file=out)
    for entry in report:
        owner = f" (owner {_quote(str(entry['owner']))})" if entry["owner"] is not None else ""
        print(f"{_quote(entry['key'], None)}{owner}:", file=out)
        for reason in entry["reasons"]:
            print(f"    {reason}", file=out)
    return EXIT_OK


def _instant_argument(text: str) -> datetime:
    moment = _parse_expiry(_utf8(text))
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {_quote(text)}")
    return moment


# ---------------------------------------------------------------------------------------------
# serve, schema


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from ferroflag import server  # only `serve` needs the HTTP machinery

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.no_access_log:
        logging.getLogger(server.ACCESS_LOGGER).setLevel(logging.WARNING)
    _check_servable(args.file)
    try:
        service = server.FlagService(args.file, args.host, args.port, poll_interval=args.poll_interval)
    except ConfigError as error:
        raise _CommandError(f"{args.file}: {error}") from error
    except OSError as error:
        raise _CommandError(f"{args.file}: cannot serve: {error.strerror or error}") from error
    return server.run(service, out=out)


def _check_servable(path: str) -> None:
    """Refuses what `serve` cannot keep serving: the server reads the file again whenever its stat
    changes, so a FIFO or a device (which would block it, or never end) and an oversized file are
    turned away before it starts."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise _CommandError(f"{path}: cannot read: {error.strerror or error}") from error
    except ValueError as error:  # an in-process caller's path with a NUL in it
        raise _CommandError(f"{path}: cannot read: {_clip(str(error))}") from error
    if stat.S_ISDIR(info.st_mode):
        raise _CommandError(f"{path}: cannot read: {os.strerror(errno.EISDIR)}")
    if not stat.S_ISREG(info.st_mode):
        raise _CommandError(f"{path}: cannot serve: not a regular file (it is re-read whenever it changes)")
    if info.st_size > MAX_FILE_BYTES:
        raise _CommandError(f"{path}: cannot read: larger than the {_MIB} limit ({info.st_size} bytes)")


def schema_text() -> str:
    """The JSON Schema (draft 2020-12) of a flag document, as shipped in the package."""
    return resources.files("ferroflag").joinpath("schema.json").read_text(encoding="utf-8")


def _cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    out.write(schema_text())
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# the parser


_EPILOG = (
    "exit codes: 0 success, 1 error (invalid file, failed validation, unknown flag; for migrate: some answers "
    f"differ), 2 usage error, 70 internal error (a bug: {DEBUG_ENV}=1 prints its traceback), 130 interrupted. "
    "No input shows a traceback."
)

#: The longest error message argparse may print: it quotes the offending arguments whole.
_MESSAGE_LIMIT = 1000


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose error messages are bounded (`invalid choice: '<100 kB>'` and
    `unrecognized arguments: <all of them>` are argparse's own texts)."""

    def error(self, message: str) -> NoReturn:
        super().error(_clip(message, _MESSAGE_LIMIT))


def _poll_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {_repr(text)}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 3600 seconds, got {_clip(text)}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {_repr(text)}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {_clip(text)}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `ferroflag` command."""
    parser = _Parser(
        prog="ferroflag",
        description="Check, explain, simulate, diff, migrate and serve ferroflag flag files.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"ferroflag {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    context = _Parser(add_help=False)
    group = context.add_argument_group("context attributes")
    group.add_argument("--email", type=_utf8, help="the user's email")
    group.add_argument("--plan", type=_utf8, help="the user's plan")
    group.add_argument("--country", type=_utf8, help="the user's country")
    group.add_argument(
        "--prop",
        metavar="NAME=VALUE",
        type=_prop,
        action="append",
        default=[],
        help="a property (repeatable), e.g. --prop beta=true --prop app_version=2.4.1",
    )
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of text")

    def command(name: str, help: str, description: str, parents: Sequence[_Parser] = ()) -> Any:
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
        "Load each FILE as the evaluator would and report errors (the file is rejected) and the\n"
        "loader's warnings (it loads, but probably not as meant): unknown fields (with the field\n"
        "probably meant), unknown operators and segments, patterns and instants that do not parse,\n"
        "duplicate keys, weights summing to 0, percentages outside [0, 100], prerequisite and segment\n"
        "cycles, missing values, rules after a rule that matches everyone (unreachable).\n"
        "Exit 1 when a file has errors, or any warning with --strict. FILE '-' reads stdin.",
        [as_json],
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="flag documents to check")
    p.add_argument("--strict", action="store_true", help="fail on any warning too")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing for files that pass")
    p.set_defaults(run=_cmd_validate)

    p = command(
        "eval",
        "evaluate one flag for one user and explain the answer",
        "Evaluate KEY for the user and print the answer, its value, and why: each prerequisite, each\n"
        "rule tried (its name, its rollout) and each condition against the user's value (segments\n"
        "with the segment rule that matched, instants as dates), the rollout bucket against the\n"
        "percentage, the variant pick. Exit 1 when FILE has no flag KEY.",
        [context, as_json],
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("key", metavar="KEY", type=_utf8, help="flag key")
    p.add_argument("--user-id", required=True, type=_utf8, help="the user id that rollouts and variant picks bucket on")
    p.set_defaults(run=_cmd_eval)

    p = command(
        "rollout",
        "distribution of a flag's answers over synthetic users",
        "Evaluate KEY for N synthetic users (user-0 .. user-N-1, with the context attributes given)\n"
        "and show how many get the flag, with which variant and value, as a table with bars, how many\n"
        "each rule takes, and what an anonymous context gets. When the flag (or a prerequisite) has a\n"
        "bucket_by other than user_id, that attribute gets the synthetic id too, unless given.",
        [context, as_json],
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("key", metavar="KEY", type=_utf8, help="flag key")
    p.add_argument("--users", type=_user_count, default=10_000, metavar="N", help="how many users (default 10000)")
    p.set_defaults(run=_cmd_rollout)

    p = command(
        "diff",
        "which flags change between two files, and for how many users",
        "Compare two flag documents: flags added, removed and changed (with the fields that\n"
        "changed), segments and document metadata, and for each flag, how many of N synthetic users\n"
        "get a different answer (turned on, turned off, another variant, another value). A flag whose\n"
        "definition is the same but whose segments or prerequisites changed is compared too.",
        [context, as_json],
    )
    p.add_argument("old", metavar="OLD", help="the flag document before")
    p.add_argument("new", metavar="NEW", help="the flag document after")
    p.add_argument("--users", type=_user_count, default=1000, metavar="N", help="users to sample (default 1000)")
    p.set_defaults(run=_cmd_diff)

    p = command(
        "migrate",
        "flags whose answers differ between format 1 and format 2, with examples and fixes",
        "List the flags of FILE that answer differently under format 2 than under format 1 (the\n"
        "original design's reading), with example contexts and the fix for each: a flag with rules\n"
        "and percentage 0 or less (format 1: everyone no rule takes got it; format 2: no_match), an\n"
        'empty bucketing value in a partial rollout or a weighted split (format 1 hashed it as ""),\n'
        "percentages outside [0, 100] (clamped now). Contexts: N synthetic users and the empty context.\n"
        "Exit 0 when no answer differs, 1 when some do (or the file is invalid).",
        [as_json],
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("--users", type=_user_count, default=1000, metavar="N", help="users to compare (default 1000)")
    p.set_defaults(run=_cmd_migrate)

    p = command(
        "stale",
        "flags a team can delete: expired, answering everyone alike, or never evaluated",
        "List the flags of FILE that look stale: metadata.expires in the past (an ISO date, the end of\n"
        "that day UTC, or a date-time), flags that give every context the same answer (disabled; no\n"
        "rules and no partial rollout; a first rule that matches everyone), and, with --usage, flags the\n"
        "app never evaluated: METRICS is the Prometheus text of ferroflag.metrics (a saved scrape, '-'\n"
        "for stdin, or the /metrics URL itself). Exit 0 (a report, not a check).",
        [as_json],
    )
    p.add_argument("file", metavar="FILE", help="flag document")
    p.add_argument("--usage", metavar="METRICS", help="a /metrics scrape (file, '-' or URL) of a running app")
    p.add_argument("--now", type=_instant_argument, metavar="INSTANT", help="judge expiry at this instant")
    p.set_defaults(run=_cmd_stale)

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
    p.add_argument("--host", default="127.0.0.1", type=_utf8, help="address to listen on (default 127.0.0.1)")
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

    p = command(
        "schema",
        "print the JSON Schema of flag files",
        "Print the JSON Schema (draft 2020-12) of flag files, format 2. Extension fields (names that\n"
        'start with "x-") are allowed; any other unknown field is a schema error.',
    )
    p.set_defaults(run=_cmd_schema)
    return parser


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns its exit code (it does not call `sys.exit`).

    It never raises and never prints a traceback: a bug is one line and EXIT_INTERNAL (the traceback
    too only when FERROFLAG_DEBUG=1), Ctrl-C is EXIT_INTERRUPTED, a reader of stdout that went away
    (`| head`) ends it quietly with EXIT_ERROR.
    """
    with _tolerant_streams():
        try:
            code = _main(argv)
            failure = _settle_stdout()
            if failure is not None:
                if not isinstance(failure, BrokenPipeError):
                    _say(f"ferroflag: cannot write the output: {failure.strerror or failure}")
                code = code or EXIT_ERROR
            return code
        except KeyboardInterrupt:
            _settle_stdout()
            return EXIT_INTERRUPTED
        except Exception as error:
            return _internal_error(error)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return _exit_code(exit_.code)
    command: str = args.command
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    if sys.stdout is not None:
        return _run_command(command, run, args, sys.stdout)
    # Started with stdout closed (`>&-`): the exit code is the answer, the output goes nowhere.
    with open(os.devnull, "w", encoding="utf-8", errors="backslashreplace") as sink:
        return _run_command(command, run, args, sink)


def _run_command(
    command: str, run: Callable[[argparse.Namespace, TextIO], int], args: argparse.Namespace, out: TextIO
) -> int:
    try:
        code = run(args, out)
        out.flush()
        return code
    except _CommandError as error:
        _say(f"ferroflag {command}: {error}")
        return EXIT_ERROR
    except BrokenPipeError:
        # stdout's reader went away (`ferroflag schema | head`): stop quietly, as other commands do.
        _settle_stdout(discard=True)
        return EXIT_ERROR
    except OSError as error:  # writing the output failed otherwise (a full disk): say so
        _settle_stdout()
        _say(f"ferroflag {command}: {_clip(error.strerror or str(error), _MESSAGE_LIMIT)}")
        return EXIT_ERROR
    except RecursionError:
        # The engine refuses documents nested 128 levels deep before Python sees them; this is the
        # backstop for any walk over Python data that still went too deep.
        _say(f"ferroflag {command}: the document is nested too deeply")
        return EXIT_ERROR
    except MemoryError:
        _say(f"ferroflag {command}: out of memory")
        return EXIT_ERROR


def _say(line: str) -> None:
    """Writes one line to stderr; a stderr that is closed or gone is no reason to fail (or to raise)."""
    stream = sys.stderr
    if stream is None:  # started with stderr closed (`2>&-`)
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _settle_stdout(discard: bool = False) -> OSError | None:
    """Flushes stdout, and returns the error when that fails (its reader went away, the disk is full).

    Then, or with `discard`, it points stdout's file descriptor at the null device, so that the
    interpreter's own flush at exit cannot fail again and print "Exception ignored ... BrokenPipeError".
    """
    stream = sys.stdout
    if stream is None:
        return None
    failure: OSError | None = None
    try:
        stream.flush()
    except OSError as error:
        failure = error
    except ValueError:  # closed
        return None
    if failure is None and not discard:
        return None
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (an in-process caller's stream)
        pass
    return failure


def _internal_error(error: BaseException) -> int:
    """A bug: one bounded line naming the exception, and the traceback too when FERROFLAG_DEBUG=1."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if debug and sys.stderr is not None:
        with suppress(OSError, ValueError):
            traceback.print_exception(error, file=sys.stderr)
    try:
        text = " ".join(str(error).split())  # one line, whatever the message holds
    except Exception:  # an exception whose __str__ itself fails
        text = "(its message cannot be shown)"
    line = f"ferroflag: internal error: {type(error).__name__}: {_clip(text, 300)}"
    _say(line if debug else f"{line} (set {DEBUG_ENV}=1 for the traceback)")
    return EXIT_INTERNAL


@contextmanager
def _tolerant_streams() -> Iterator[None]:
    """Makes stdout and stderr write what their encoding lacks as backslash escapes, for the run.

    Flag keys, values and file names may hold any character; under PYTHONIOENCODING=ascii or LC_ALL=C
    printing one would raise UnicodeEncodeError, and a file name that is not UTF-8 (a lone surrogate)
    raises under any encoding. The streams' own error handlers come back afterwards, so an in-process
    caller's streams are as they were.
    """
    saved: list[tuple[io.TextIOWrapper, str | None]] = []
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors != "backslashreplace":
            try:
                errors = stream.errors
                stream.reconfigure(errors="backslashreplace")
                saved.append((stream, errors))
            except (OSError, ValueError):  # closed, or a flush of pending output that failed
                pass
    try:
        yield
    finally:
        for stream, errors in saved:
            with suppress(OSError, ValueError):
                stream.reconfigure(errors=errors)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
