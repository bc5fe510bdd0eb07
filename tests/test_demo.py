"""The end-to-end demo (`make demo`): examples/demo.py tells its story, exits 0 and leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"
EXAMPLE = ROOT / "examples" / "flags.json"


def run_demo(*args):
    return subprocess.run(
        [sys.executable, str(DEMO), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def child_pids(out):
    """The pids the demo printed for the flag service (step 1) and the app (step 2)."""
    service = re.search(r"serving http://127\.0\.0\.1:\d+/api/flags  \(pid (\d+)\)", out)
    app = re.search(r"polls every [\d.]+ s  \(pid (\d+)\)", out)
    assert service, out
    assert app, out
    return int(service[1]), int(app[1])


def survives(pid):
    """Whether `pid` is still a ferroflag serve or example-app process (a reused pid is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return b"ferroflag" in cmdline or b"fastapi_app" in cmdline


def assert_no_children_left(out):
    for pid in child_pids(out):
        assert not survives(pid), f"pid {pid} outlived the demo:\n{out}"


def table_rows(out):
    """Step 3's table: user -> its row."""
    section = out.split("\n3. ", 1)[1].split("\n4. ", 1)[0]
    return {line.split()[0]: line for line in section.splitlines()[2:] if line.startswith("   ") and "(" not in line}


@pytest.mark.slow
def test_the_demo_shows_users_the_change_arriving_and_shuts_down():
    started = time.monotonic()
    result = run_demo(EXAMPLE)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert time.monotonic() - started < 30, "the demo should take seconds"
    assert "Traceback" not in result.stderr, result.stderr

    # Both processes started on loopback.
    assert re.search(r"^1\. flag service  python -m ferroflag serve \S+ --port 0", out, re.M), out
    assert re.search(r"^2\. example app   FERROFLAG_URL=http://127\.0\.0\.1:\d+ ", out, re.M), out

    # Users saw different answers, each with a reason from explain().
    rows = table_rows(out)
    assert set(rows) == {"alice", "bob", "carol", "dave", "erin", "frank"}, out
    assert "200 new, staff" in rows["alice"], rows["alice"]
    assert "rule: email ends_with @example.com" in rows["alice"], rows["alice"]
    assert "200 new, v2" in rows["bob"], rows["bob"]
    assert "on, eur" in rows["bob"], rows["bob"]
    assert re.search(r" 404 .*bucket [\d.]+ >= 30%", rows["erin"]), rows["erin"]
    assert "slate" in rows["frank"], rows["frank"]
    assert "midnight" in rows["alice"], rows["alice"]
    # eu-pricing has rules and no rollout: on for the EU countries its rule names, off for everyone else.
    eu_pricing = {user: re.split(r"\s{2,}", row.strip())[5] for user, row in rows.items()}
    assert eu_pricing == {
        "alice": "off",
        "bob": "on, eur",
        "carol": "on, eur",
        "dave": "off",
        "erin": "on, eur",
        "frank": "off",
    }, rows

    # The change travels through ETag sync: 304 before, 200 and a new ETag after, then the app has it.
    before = re.search(r'before: flag service ETag ("[^"]+"); If-None-Match it -> 304 Not Modified', out)
    after = re.search(r'after:  flag service ETag ("[^"]+"); If-None-Match the old one -> 200 OK', out)
    assert before, out
    assert after, out
    assert before[1] != after[1]
    assert f"the app's sync client has ETag {after[1]}" in out, out
    assert "new-checkout rollout 30% -> 50%" in out, out
    assert re.search(r"^   erin   GET /checkout: 404 -> 200 new, v\d   why: bucket [\d.]+ < 50%", out, re.M), out
    assert "unchanged: alice, bob, carol, dave, frank" in out, out
    assert "every HTTP answer, before and after, agrees with FlagEvaluator.evaluate()" in out, out

    # Shut down cleanly, and nothing is left running.
    assert re.search(r"^5\. Shut down: app \(pid \d+\) .*; flag service \(pid \d+\) exited 0\.", out, re.M), out
    assert "killed" not in out, out
    assert_no_children_left(out)


def test_a_failure_after_the_servers_started_still_stops_them(tmp_path):
    # No new-checkout: everything runs up to the change, which fails.
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["flags"] = [flag for flag in document["flags"] if flag["key"] != "new-checkout"]
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps(document), encoding="utf-8")

    result = run_demo(flags)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "demo failed: the flag file has no flag 'new-checkout' to change" in out, out
    assert "5. Shut down: app (pid" in out, out
    assert_no_children_left(out)


def test_sigterm_to_the_demo_stops_its_servers():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    demo = subprocess.Popen(
        [sys.executable, str(DEMO)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    lines = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the app is up
            line = demo.stdout.readline()
            lines.append(line)
            if not line or "polls every" in line:
                break
        assert "polls every" in lines[-1], "".join(lines)
        demo.send_signal(signal.SIGTERM)
        rest, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out = "".join(lines) + rest
    assert demo.returncode == 128 + signal.SIGTERM, out
    assert "5. Shut down: app (pid" in out, out
    assert_no_children_left(out)


def static_answers(out):
    """--static's output: user -> flag -> (state, variant, reason)."""
    answers: dict[str, dict[str, tuple[str, str, str]]] = {}
    user = ""
    for line in out.splitlines():
        if match := re.match(r"EvalContext\(user_id='(\w+)'", line):
            user = match[1]
            answers[user] = {}
        elif match := re.match(r"  (ON |off) (\S+)\s+(?:variant='([^']*)')?.*\((\w+)\)$", line):
            answers[user][match[2]] = (match[1].strip(), match[3] or "", match[4])
    return answers


@pytest.mark.parametrize("args", [["--static"], ["--static", EXAMPLE]])
def test_static_mode_evaluates_in_process(args):
    result = run_demo(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Loaded 5 flags from "), result.stdout
    assert "warning" not in result.stdout, result.stdout  # examples/flags.json loads cleanly
    assert "ON  new-checkout   variant='staff'" in result.stdout, result.stdout
    assert "serving" not in result.stdout
    answers = static_answers(result.stdout)
    assert set(answers) == {"alice", "bob", "carol", "dave", "erin", "frank"}, result.stdout
    assert {flag for flags in answers.values() for flag in flags} == {
        "new-checkout",
        "dark-mode",
        "beta-search",
        "eu-pricing",
        "legacy-export",
    }
    # Flags with rules and no rollout serve only the users their rules match (docs/spec.md §2 step 5).
    assert {user for user, flags in answers.items() if flags["beta-search"][0] == "ON"} == {"bob", "frank"}
    assert {user for user, flags in answers.items() if flags["eu-pricing"][0] == "ON"} == {"bob", "carol", "erin"}
    assert answers["bob"]["beta-search"] == ("ON", "vector", "rule_match")
    assert answers["erin"]["eu-pricing"] == ("ON", "eur", "rule_match")
    assert answers["alice"]["eu-pricing"] == ("off", "", "no_match")
    assert answers["dave"]["beta-search"] == ("off", "", "no_match")  # 2.3.0 is not above 2.3.0
    assert "no targeting rule matched, and no rollout (no_match)" in result.stdout, result.stdout
    assert answers["erin"]["new-checkout"] == ("off", "", "percentage_excluded")
    assert {flags["legacy-export"] for flags in answers.values()} == {("off", "", "disabled")}
