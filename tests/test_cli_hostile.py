"""The `ferroflag` command against hostile input and hostile environments.

The guarantee checked here (README, "The `ferroflag` command"): whatever the arguments, the files and
the environment, the command never shows a traceback. It ends with a short message that names what is
wrong and a non-zero exit code (1 for a file or flag problem, 2 for bad arguments, 130 for Ctrl-C, 70 for
a bug), and every error or warning line it prints is bounded however large the value it quotes.

Every case runs `python -m ferroflag` as a real process, because the interesting failures (how argv
bytes are decoded, the encoding of stdout, a closed pipe, SIGINT) only exist there.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ferroflag import cli
from ferroflag.cli import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, MAX_FILE_BYTES, main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX argv bytes, FIFOs and signals")

#: No error case may print more than this on stdout plus stderr: a few lines of bounded messages.
BOUND = 4096

OK_DOC = {"flags": [{"key": "a", "enabled": True, "percentage": 50, "variants": {"x": 1, "y": 1}}]}
NON_ASCII_KEY = "clé-été-日本"
NON_ASCII_DOC = {
    "segments": [{"key": "sé", "rules": [], "bogus": 1}],
    "flags": [
        {
            "key": NON_ASCII_KEY,
            "enabled": True,
            "percentage": 50,
            "variants": {"vé": 1, "wö": 1},
            "values": {"vé": "välue", "wö": {"ü": ["ß"]}},
            "rules": [
                {
                    "name": "règle",
                    "conditions": [{"attribute": "pays", "operator": "eq", "values": ["France é"]}],
                    "variant": "vé",
                }
            ],
            "bogus": 1,
        }
    ],
}
HUGE = 15_000_000  # a 15 MB string: under the file limit, far over any sensible line
HALF_HUGE = 7_000_000  # twice in one file, still under the limit


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONIOENCODING", "FERROFLAG_", "LC_"))}
    env.pop("PYTHONUTF8", None)
    env.update(extra)
    return env


def run(*argv: Any, env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float = 20):
    """Runs `python -m ferroflag ARGV` (str, bytes and Path arguments) and returns the bytes it printed."""
    args = [a if isinstance(a, bytes) else str(a) for a in argv]
    return subprocess.run(
        [sys.executable, "-m", "ferroflag", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env if env is not None else _env(),
        timeout=timeout,
        check=False,
    )


def clean(done, code: int, *needles: str, bound: int | None = BOUND) -> str:
    """Checks a finished run: the exit code, no traceback, the needles in its output, the size bound."""
    out = done.stdout.decode("utf-8", "backslashreplace")
    err = done.stderr.decode("utf-8", "backslashreplace")
    both = out + err
    assert "Traceback" not in both, both[-2000:]
    assert "internal error" not in err or code == EXIT_INTERNAL, err[-2000:]
    assert done.returncode == code, both[-2000:]
    for needle in needles:
        assert needle in both, (needle, both[-2000:])
    if bound is not None:
        assert len(done.stdout) + len(done.stderr) <= bound, both[:2000]
    return both


def nested(depth: int, kind: str = "array") -> str:
    return "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth


# A document with an item nested `depth` levels deep at each kind of place: fields the loader reads,
# unknown fields (warned about, never read) and extension fields (never read), inside flags, segments
# and the document itself.
PLACES = {
    "flag-unknown-field": '{"flags": [{"key": "a", "enabled": true, "bogus": DEEP}]}',
    "flag-x-field": '{"flags": [{"key": "a", "enabled": true, "x-meta": DEEP}]}',
    "flag-values": '{"flags": [{"key": "a", "enabled": true, "values": {"v": DEEP}}]}',
    "document-unknown-field": '{"bogus": DEEP, "flags": [{"key": "a", "enabled": true}]}',
    "document-metadata": '{"metadata": {"m": DEEP}, "flags": [{"key": "a", "enabled": true}]}',
    "segment-unknown-field": '{"segments": [{"key": "s", "rules": [], "bogus": DEEP}], "flags": []}',
}

# Every command that reads a flag file, with FILE where the file goes.
FILE_COMMANDS = {
    "validate": ["validate", "FILE"],
    "validate-json": ["validate", "--json", "FILE"],
    "eval": ["eval", "FILE", "a", "--user-id", "u"],
    "eval-json": ["eval", "--json", "FILE", "a", "--user-id", "u"],
    "rollout": ["rollout", "FILE", "a", "--users", "3"],
    "diff-old": ["diff", "FILE", "GOOD"],
    "diff-new": ["diff", "GOOD", "FILE"],
    "migrate": ["migrate", "FILE", "--users", "3"],
    "serve": ["serve", "FILE", "--port", "0"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The hostile files, written once: some are large."""
    root = tmp_path_factory.mktemp("hostile")
    made: dict[str, Path] = {}

    def put(name: str, data: bytes | str) -> None:
        path = root / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        made[name] = path

    put("good.json", json.dumps(OK_DOC))
    put("non-ascii.json", json.dumps(NON_ASCII_DOC, ensure_ascii=False))
    for depth in (5_000, 100_000):
        for place, template in PLACES.items():
            put(f"deep-{depth}-{place}.json", template.replace("DEEP", nested(depth)))
        put(f"deep-{depth}-objects.json", PLACES["flag-unknown-field"].replace("DEEP", nested(depth, "object")))
    put("invalid-utf8.json", b'{"flags": [{"key": "\xff\xfe", "enabled": true}]}')
    put("invalid-utf8-bom.json", b"\xff\xfe[]")
    big = "k" * HUGE
    put("huge-key-rejected.json", json.dumps({"flags": [{"key": big, "enabled": 1}]}))
    half = "k" * HALF_HUGE
    twice = {"flags": [{"key": half, "enabled": True}, {"key": half, "enabled": True}]}
    put("huge-key-duplicate.json", json.dumps(twice))
    put("huge-segment-key.json", json.dumps({"segments": [{"key": big, "rules": [], "bogus": 1}], "flags": []}))
    put("huge-segment-key-rejected.json", json.dumps({"segments": [{"key": big, "rules": 5}], "flags": []}))
    many = {"flags": [{"key": f"flag-{i}-" + "x" * 200, "enabled": True} for i in range(5_000)]}
    put("many-flags.json", json.dumps(many))
    over = root / "over-limit.json"
    with open(over, "wb") as f:  # sparse: the size is what matters, not the bytes
        f.truncate(MAX_FILE_BYTES + 1)
    made["over-limit.json"] = over
    fifo = root / "fifo.json"
    os.mkfifo(fifo)
    made["fifo.json"] = fifo
    made["directory"] = root / "a-directory"
    made["directory"].mkdir()
    made["missing.json"] = root / "missing.json"
    made["not-a-directory"] = made["good.json"] / "flags.json"  # ENOTDIR
    return made


def argv_for(command: str, path: Path, files: dict[str, Path]) -> list[Any]:
    return [path if a == "FILE" else files["good.json"] if a == "GOOD" else a for a in FILE_COMMANDS[command]]


# -- deep nesting, anywhere in the document


@pytest.mark.parametrize("depth", [5_000, 100_000])
@pytest.mark.parametrize("place", [*PLACES, "objects"])
def test_validate_deep_nesting_anywhere_is_a_clean_error(files, depth, place):
    path = files[f"deep-{depth}-{place}.json"]
    clean(run("validate", path), EXIT_ERROR, f"{path}: error: nested 128 or more levels deep", f"{path}: FAILED")


@pytest.mark.parametrize("command", FILE_COMMANDS)
@pytest.mark.parametrize("place", ["flag-unknown-field", "segment-unknown-field", "flag-values"])
def test_every_command_refuses_deep_nesting_cleanly(files, command, place):
    path = files[f"deep-100000-{place}.json"]
    clean(run(*argv_for(command, path, files)), EXIT_ERROR, "nested 128 or more levels deep")


# -- files that are not flag files


UNREADABLE = {
    "missing.json": "No such file or directory",
    "directory": "Is a directory",
    "not-a-directory": "Not a directory",
    "over-limit.json": f"larger than the {MAX_FILE_BYTES // 2**20} MiB limit",
    "fifo.json": "not valid JSON",  # a FIFO nobody writes to reads as empty, at once
    "invalid-utf8.json": "not valid JSON",
    "invalid-utf8-bom.json": "not valid JSON",
}
#: `serve` re-reads its file whenever it changes, so it only takes a regular file.
UNREADABLE_SERVE = {**UNREADABLE, "fifo.json": "not a regular file"}


@pytest.mark.parametrize("name", UNREADABLE)
@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_every_command_reports_a_file_it_cannot_use(files, command, name):
    path = files[name]
    started = time.monotonic()
    expected = (UNREADABLE_SERVE if command == "serve" else UNREADABLE)[name]
    both = clean(run(*argv_for(command, path, files), timeout=10), EXIT_ERROR, expected)
    assert time.monotonic() - started < 5  # the FIFO did not block
    if command.startswith("validate") and not command.endswith("json"):
        assert f"{path}: FAILED (1 error)" in both
    elif not command.startswith("validate"):
        [line] = both.splitlines()
        verb = command.split("-")[0]
        assert line.startswith(f"ferroflag {verb}: {path}: "), line


def test_a_fifo_with_a_writer_is_read_like_a_pipe(files, tmp_path):
    # `ferroflag diff <(git show HEAD:flags.json) flags.json`: process substitution gives a pipe.
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferroflag", "validate", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    with open(fifo, "wb") as writer:  # opening blocks until the command has opened it for reading
        writer.write(json.dumps(OK_DOC).encode())
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out.decode(), err) == (EXIT_OK, f"{fifo}: ok, 1 flag\n", b"")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a mode-000 file")
def test_a_file_without_read_permission(files, tmp_path):
    path = tmp_path / "secret.json"
    path.write_text("[]")
    path.chmod(0)
    clean(run("eval", path, "a", "--user-id", "u"), EXIT_ERROR, "cannot read: Permission denied")


def test_stdin_over_the_limit_is_refused(files):
    done = run("validate", "-", stdin=b" " * (MAX_FILE_BYTES + 1))
    clean(done, EXIT_ERROR, f"<stdin>: error: cannot read: larger than the {MAX_FILE_BYTES // 2**20} MiB limit")


def test_a_file_at_the_limit_is_read(tmp_path):
    path = tmp_path / "at-limit.json"
    text = json.dumps(OK_DOC).encode()
    path.write_bytes(text + b" " * (MAX_FILE_BYTES - len(text)))
    clean(run("validate", path), EXIT_OK, f"{path}: ok, 1 flag")


def test_a_device_is_read_up_to_the_limit():
    clean(run("validate", "/dev/zero"), EXIT_ERROR, "larger than the")
    clean(run("validate", "/dev/null"), EXIT_ERROR, "not valid JSON")


def test_serve_refuses_what_is_not_a_regular_file(files):
    # The server re-reads the file whenever its stat changes: a FIFO would block it for good.
    clean(run("serve", files["fifo.json"], "--port", "0", timeout=10), EXIT_ERROR, "not a regular file")
    clean(run("serve", "/dev/zero", "--port", "0", timeout=10), EXIT_ERROR, "not a regular file")


# -- huge values are quoted by a prefix


@pytest.mark.parametrize(
    ("name", "argv", "code", "needle"),
    [
        ("huge-key-rejected.json", ["validate"], EXIT_ERROR, "expected a bool, got a number"),
        ("huge-key-rejected.json", ["eval", "FILE", "a", "--user-id", "u"], EXIT_ERROR, "expected a bool"),
        ("huge-key-rejected.json", ["migrate"], EXIT_ERROR, "expected a bool"),
        ("huge-key-duplicate.json", ["validate"], EXIT_OK, "duplicate key"),
        ("huge-key-duplicate.json", ["validate", "--strict"], EXIT_ERROR, "duplicate key"),
        ("huge-key-duplicate.json", ["eval", "FILE", "a", "--user-id", "u"], EXIT_ERROR, "no flag 'a'"),
        ("huge-segment-key.json", ["validate"], EXIT_OK, "unknown field"),
        ("huge-segment-key-rejected.json", ["validate"], EXIT_ERROR, "expected an array"),
        ("many-flags.json", ["eval", "FILE", "a", "--user-id", "u"], EXIT_ERROR, "no flag 'a'"),
        ("many-flags.json", ["rollout", "FILE", "a"], EXIT_ERROR, "no flag 'a'"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(v) if isinstance(v, list) else None,
)
def test_a_huge_value_is_quoted_by_a_prefix_and_its_length(files, name, argv, code, needle):
    path = files[name]
    full = [*argv, path] if "FILE" not in argv else [path if a == "FILE" else a for a in argv]
    both = clean(run(*full), code, needle)
    if "huge" in name:
        length = HALF_HUGE if "duplicate" in name else HUGE
        assert f"… ({length} bytes)" in both  # the length of what was cut


def test_eval_not_found_lists_a_bounded_number_of_flags(files):
    both = clean(run("eval", files["many-flags.json"], "nope", "--user-id", "u"), EXIT_ERROR, "no flag 'nope'")
    assert "flag-0-" in both
    assert "and 4990 more" in both


@pytest.mark.parametrize(
    "argv",
    [
        ["rollout", "GOOD", "a", "--users", "9" * 100_000],
        ["rollout", "GOOD", "a", "--users", "9" * 4_000],  # parses (under int's digit limit), out of range
        ["serve", "GOOD", "--port", "9" * 4_000],
        ["serve", "GOOD", "--poll-interval", "0." + "0" * 100_000 + "1"],
        ["serve", "GOOD", "--port", "x" * 100_000],
        ["serve", "GOOD", "--poll-interval", "x" * 100_000],
        ["eval", "GOOD", "a", "--user-id", "u", "--prop", "x" * 100_000],
        ["x" * 100_000],
        ["validate", "GOOD", *[f"--bogus-{i}-" + "x" * 1_000 for i in range(500)]],
    ],
    ids=[
        "users",
        "users-range",
        "port-range",
        "poll-interval-range",
        "port",
        "poll-interval",
        "prop",
        "command",
        "unrecognized",
    ],
)
def test_usage_errors_quote_huge_arguments_by_a_prefix(files, argv):
    clean(run(*[files["good.json"] if a == "GOOD" else a for a in argv]), EXIT_USAGE, "usage: ferroflag")


# -- argv that is not UTF-8


BAD = b"\xff\xfe-not-utf-8"

STRING_OPTIONS = [
    ("KEY", ["eval", "GOOD", BAD, "--user-id", "u"]),
    ("--user-id", ["eval", "GOOD", "a", "--user-id", BAD]),
    ("--email", ["eval", "GOOD", "a", "--user-id", "u", "--email", BAD]),
    ("--plan", ["eval", "GOOD", "a", "--user-id", "u", "--plan", BAD]),
    ("--country", ["eval", "GOOD", "a", "--user-id", "u", "--country", BAD]),
    ("--prop", ["eval", "GOOD", "a", "--user-id", "u", "--prop", b"name=" + BAD]),
    ("--prop", ["eval", "GOOD", "a", "--user-id", "u", "--prop", BAD + b"=value"]),
    ("--prop", ["eval", "--json", "GOOD", "a", "--user-id", "u", "--prop", b"p=" + BAD]),
    ("KEY", ["rollout", "GOOD", BAD, "--users", "3"]),
    ("--prop", ["rollout", "GOOD", "a", "--users", "3", "--prop", b"p=" + BAD]),
    ("--email", ["rollout", "GOOD", "a", "--users", "3", "--email", BAD]),
    ("--plan", ["diff", "GOOD", "GOOD", "--users", "3", "--plan", BAD]),
    ("--prop", ["diff", "GOOD", "GOOD", "--users", "3", "--prop", b"p=" + BAD]),
    ("--host", ["serve", "GOOD", "--port", "0", "--host", BAD]),
    ("--users", ["rollout", "GOOD", "a", "--users", BAD]),
    ("--port", ["serve", "GOOD", "--port", BAD]),
    ("--poll-interval", ["serve", "GOOD", "--poll-interval", BAD]),
    ("COMMAND", [BAD]),
]


@pytest.mark.parametrize(("option", "argv"), STRING_OPTIONS, ids=[f"{a[0]}{o}" for o, a in STRING_OPTIONS])
def test_argv_that_is_not_utf8_is_a_usage_error_naming_the_option(files, option, argv):
    argv = [files["good.json"] if a == "GOOD" else a for a in argv]
    both = clean(run(*argv), EXIT_USAGE, "usage: ferroflag")
    assert f"argument {option}: " in both
    if option not in ("--users", "--port", "--poll-interval", "COMMAND"):  # these say what they expect
        assert "not valid UTF-8" in both


def test_utf8_arguments_work_under_an_ascii_locale(files):
    # Under LC_ALL=C without locale coercion Python decodes argv as ASCII: the key's UTF-8 bytes are
    # still the key.
    env = _env(LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    done = run("eval", "--json", files["non-ascii.json"], NON_ASCII_KEY.encode(), "--user-id", "ü", env=env)
    clean(done, EXIT_OK, bound=None)
    data = json.loads(done.stdout)
    assert (data["flag"], data["context"]["user_id"]) == (NON_ASCII_KEY, "ü")


def test_a_file_name_that_is_not_utf8(tmp_path):
    name = os.fsencode(tmp_path) + b"/\xff-flags.json"
    both = clean(run("validate", name), EXIT_ERROR, "cannot read: No such file or directory")
    assert "\\udcff-flags.json: FAILED" in both or "\\xff-flags.json: FAILED" in both
    with open(name, "w") as f:
        json.dump(OK_DOC, f)
    clean(run("validate", name), EXIT_OK, "-flags.json: ok, 1 flag")
    done = run("validate", "--json", name)
    clean(done, EXIT_OK)
    assert json.loads(done.stdout)["files"][0]["file"].endswith("\udcff-flags.json")
    clean(run("eval", name, "a", "--user-id", "u"), EXIT_OK, "a for user_id='u'", bound=None)
    clean(run("diff", name, name), EXIT_OK, "no flag changed", bound=None)
    clean(run("eval", name, "nope", "--user-id", "u"), EXIT_ERROR, "no flag 'nope'")


# -- stdout and stderr that cannot take every character


ENCODINGS = {
    "PYTHONIOENCODING=ascii": _env(PYTHONIOENCODING="ascii"),
    "PYTHONIOENCODING=ascii:strict": _env(PYTHONIOENCODING="ascii:strict"),
    "PYTHONIOENCODING=latin-1": _env(PYTHONIOENCODING="latin-1"),
    "LANG=C": _env(LANG="C", LC_ALL="C"),
    "LANG=C-no-coercion": _env(LANG="C", LC_ALL="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0"),
}

NON_ASCII_COMMANDS = {
    "validate": (["validate", "FILE"], EXIT_OK),
    "validate-strict": (["validate", "--strict", "FILE"], EXIT_ERROR),
    "eval": (["eval", "FILE", NON_ASCII_KEY, "--user-id", "u", "--prop", "pays=France é"], EXIT_OK),
    "rollout": (["rollout", "FILE", NON_ASCII_KEY, "--users", "20"], EXIT_OK),
    "diff": (["diff", "GOOD", "FILE", "--users", "5"], EXIT_OK),
    "migrate": (["migrate", "FILE", "--users", "5"], EXIT_ERROR),  # format 1 answered anonymous users otherwise
    "eval-missing": (["eval", "FILE", "nöpe", "--user-id", "ü"], EXIT_ERROR),
}


def _non_ascii_argv(command: str, files: dict[str, Path], *extra: str) -> list[Any]:
    argv, _ = NON_ASCII_COMMANDS[command]
    argv = [argv[0], *extra, *argv[1:]]
    argv = [files["non-ascii.json"] if a == "FILE" else files["good.json"] if a == "GOOD" else a for a in argv]
    return [a.encode() if isinstance(a, str) else a for a in argv]  # the bytes a UTF-8 terminal sends


@pytest.mark.parametrize("env", ENCODINGS)
@pytest.mark.parametrize("command", NON_ASCII_COMMANDS)
def test_non_ascii_output_under_a_narrow_encoding(files, env, command):
    done = run(*_non_ascii_argv(command, files), env=ENCODINGS[env])
    clean(done, NON_ASCII_COMMANDS[command][1], bound=None)


@pytest.mark.parametrize("env", ENCODINGS)
@pytest.mark.parametrize("command", ["validate", "eval", "rollout", "diff", "migrate"])
def test_json_output_stays_valid_json_under_a_narrow_encoding(files, env, command):
    done = run(*_non_ascii_argv(command, files, "--json"), env=ENCODINGS[env])
    clean(done, NON_ASCII_COMMANDS[command][1], bound=None)
    text = json.dumps(json.loads(done.stdout), ensure_ascii=False)  # what matters: it parses, with the key
    assert NON_ASCII_KEY in text or command == "diff"


@pytest.mark.parametrize(
    "env",
    [{"PYTHONIOENCODING": "ascii:strict"}, {"COLUMNS": "-100"}, {"COLUMNS": "1"}, {"COLUMNS": "99999999"}],
    ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()),
)
def test_help_and_usage_errors_under_odd_environments(env):
    for argv, code in ((["--help"], EXIT_OK), (["eval", "--help"], EXIT_OK), (["eval"], EXIT_USAGE)):
        clean(run(*argv, env=_env(**env)), code, "usage: ferroflag", bound=None)


# -- stdout and stderr that go away


def _closed_reader(argv: list[Any]) -> tuple[int, bytes]:
    """Runs the command with its stdout a pipe whose reader is already gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferroflag", *map(str, argv)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    return proc.wait(timeout=20), err


@pytest.fixture(scope="module")
def big_value(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big-value.json"
    value = {"items": ["x" * 100] * 5_000}
    flags = [{"key": f"f{i}", "enabled": True, "values": {"on": value}, "default_variant": "on"} for i in range(3)]
    path.write_text(json.dumps({"flags": flags}))
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["schema"],
        ["validate", "GOOD", "GOOD", "GOOD"],
        ["validate", "--json", "BIG"],
        ["eval", "--json", "BIG", "f0", "--user-id", "u"],
        ["eval", "BIG", "f0", "--user-id", "u"],
        ["rollout", "BIG", "f0", "--users", "50"],
        ["diff", "GOOD", "BIG", "--json", "--users", "5"],
        ["migrate", "BIG", "--users", "5", "--json"],
        ["--help"],
    ],
    ids=lambda a: "-".join(x for x in a if x not in ("GOOD", "BIG") and not x.startswith("f0")),
)
def test_a_closed_stdout_pipe_ends_quietly(files, big_value, argv):
    argv = [files["good.json"] if a == "GOOD" else big_value if a == "BIG" else a for a in argv]
    code, err = _closed_reader(argv)
    assert err == b""
    assert code in (EXIT_OK, EXIT_ERROR)  # 0 only if everything fitted into the pipe before it closed


def test_head_c1(big_value, tmp_path):
    err = tmp_path / "err"
    command = '"$0" -m ferroflag eval --json "$1" f0 --user-id u 2>"$2" | head -c1'
    done = subprocess.run(
        ["sh", "-c", command, sys.executable, str(big_value), str(err)],
        capture_output=True,
        env=_env(),
        timeout=20,
        check=False,
    )
    assert done.stdout == b"{"
    assert err.read_bytes() == b""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["schema"], ["validate", "GOOD"], ["eval", "--json", "GOOD", "a", "--user-id", "u"]])
def test_a_full_disk_is_one_line(files, argv):
    args = [str(files["good.json"]) if a == "GOOD" else a for a in argv]
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" -m ferroflag "$@" >/dev/full', sys.executable, *args],
        capture_output=True,
        env=_env(),
        timeout=20,
        check=False,
    )
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("ferroflag ")
    assert line.endswith(": No space left on device")
    assert done.returncode == EXIT_ERROR


def test_stdout_or_stderr_closed(files):
    # `cmd >&-`, `cmd 2>&-`, `cmd <&-`: Python starts with sys.stdout (sys.stderr, sys.stdin) None.
    for redirect, argv, code in [
        (">&-", ["validate", files["good.json"]], EXIT_OK),
        (">&-", ["validate", files["missing.json"]], EXIT_ERROR),
        (">&-", ["eval", "--json", files["good.json"], "a", "--user-id", "u"], EXIT_OK),
        ("2>&-", ["eval", files["missing.json"], "a", "--user-id", "u"], EXIT_ERROR),
        ("2>&-", ["eval", files["good.json"], "a", "--user-id", BAD], EXIT_USAGE),
        ("2>&-", ["frobnicate"], EXIT_USAGE),
        ("<&-", ["validate", "-"], EXIT_ERROR),
        ("<&-", ["diff", "-", files["good.json"]], EXIT_ERROR),
    ]:
        args = [a if isinstance(a, bytes) else str(a) for a in argv]
        done = subprocess.run(
            ["sh", "-c", f'exec "$0" -m ferroflag "$@" {redirect}', sys.executable, *args],
            capture_output=True,
            env=_env(),
            timeout=20,
            check=False,
        )
        assert b"Traceback" not in done.stdout + done.stderr
        assert done.returncode == code, (redirect, argv, done)


# -- Ctrl-C and bugs


def _blocked_on_stdin(pid: int) -> bool:
    try:
        return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        pytest.skip("needs /proc/PID/wchan to know the command is waiting")


def test_ctrl_c_exits_130_without_a_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferroflag", "validate", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    deadline = time.monotonic() + 15
    while not _blocked_on_stdin(proc.pid):
        assert time.monotonic() < deadline, "the command never read stdin"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    # Wait with stdin still open, as at a terminal: `communicate()` would close it at once, and on a loaded
    # machine the child could then see end-of-file before the signal and validate an empty document.
    proc.wait(timeout=20)
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (EXIT_INTERRUPTED, b"", b"")


def test_ctrl_c_in_process(capsys, monkeypatch):
    def interrupted(args, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_schema", interrupted)
    assert main(["schema"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == ""


def test_a_bug_is_one_bounded_line_and_exit_70(capsys, monkeypatch):
    def buggy(args, out):
        raise RuntimeError("x" * 1_000_000)

    monkeypatch.delenv("FERROFLAG_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_cmd_schema", buggy)
    assert main(["schema"]) == EXIT_INTERNAL == 70
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ferroflag: internal error: RuntimeError: xxx")
    assert len(line) < 1000
    assert "FERROFLAG_DEBUG=1" in line


def test_ferroflag_debug_shows_the_traceback(capsys, monkeypatch):
    def buggy(args, out):
        raise RuntimeError("boom")

    monkeypatch.setenv("FERROFLAG_DEBUG", "1")
    monkeypatch.setattr(cli, "_cmd_schema", buggy)
    assert main(["schema"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.rstrip().endswith("ferroflag: internal error: RuntimeError: boom")


def test_a_bug_while_parsing_is_an_internal_error_too(capsys, monkeypatch):
    def broken_parser():
        raise LookupError("no parser")

    monkeypatch.delenv("FERROFLAG_DEBUG", raising=False)
    monkeypatch.setattr(cli, "build_parser", broken_parser)
    assert main(["schema"]) == EXIT_INTERNAL
    assert capsys.readouterr().err.startswith("ferroflag: internal error: LookupError: no parser")


def test_in_process_main_leaves_the_streams_as_they_were(capsys):
    before = (sys.stdout.errors, sys.stderr.errors)
    assert main(["schema"]) == EXIT_OK
    assert (sys.stdout.errors, sys.stderr.errors) == before
    capsys.readouterr()


def test_help_documents_the_exit_codes_and_ferroflag_debug(capsys):
    assert main(["--help"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())  # the epilog is re-wrapped to the terminal
    assert "70 internal error" in out
    assert "130" in out
    assert "FERROFLAG_DEBUG=1" in out


def test_a_huge_pattern_that_does_not_compile_is_quoted_by_a_prefix(tmp_path):
    path = tmp_path / "pattern.json"
    condition = {"attribute": "email", "operator": "matches", "values": ["(" + "z" * 100_000]}
    path.write_text(json.dumps({"flags": [{"key": "a", "enabled": True, "rules": [{"conditions": [condition]}]}]}))
    clean(run("validate", path), EXIT_OK, "pattern does not compile")


def test_the_fixture_files_are_what_they_claim(files):
    assert stat.S_ISFIFO(os.stat(files["fifo.json"]).st_mode)
    assert os.stat(files["over-limit.json"]).st_size == MAX_FILE_BYTES + 1
