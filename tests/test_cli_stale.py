"""`ferroflag stale`: flags a team can delete (expired, answering everyone alike, never evaluated)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ferroflag import EvalContext, FlagEvaluator, metrics
from ferroflag.cli import main
from prometheus_client import CollectorRegistry, generate_latest

RULE = {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}]}
FLAGS = [
    {"key": "expired", "enabled": True, "rules": [RULE], "metadata": {"expires": "2026-01-31", "owner": "growth"}},
    {"key": "expires-later", "enabled": True, "rules": [RULE], "metadata": {"expires": "2030-01-01"}},
    {"key": "off", "enabled": False},
    {"key": "everyone", "enabled": True, "percentage": 100},
    {"key": "everyone-no-rules", "enabled": True},
    {"key": "catch-all-first", "enabled": True, "rules": [{"conditions": [], "variant": "on"}, RULE]},
    {"key": "targeted", "enabled": True, "rules": [RULE]},
    {"key": "rolling-out", "enabled": True, "percentage": 30},
    {"key": "split", "enabled": True, "percentage": 100, "variants": {"a": 1, "b": 1}},
    {"key": "one-armed-split", "enabled": True, "variants": {"a": 1, "b": 0}},
    {"key": "partial-catch-all", "enabled": True, "rules": [{"conditions": [], "percentage": 50}]},
    {"key": "has-prerequisite", "enabled": True, "prerequisites": [{"key": "targeted"}]},
    {"key": "bad-expiry", "enabled": True, "rules": [RULE], "metadata": {"expires": "next spring"}},
]
STATIC = {
    "expired": ["expired on 2026-01-31"],
    "off": ["disabled: every context gets the off answer"],
    "everyone": ["no rules and no partial rollout: every context gets the flag, with the same variant"],
    "everyone-no-rules": ["no rules and no partial rollout: every context gets the flag, with the same variant"],
    "catch-all-first": ["rules[0] matches every context first and always serves the same variant"],
    "one-armed-split": ["no rules and no partial rollout: every context gets the flag, with the same variant"],
    "bad-expiry": ['metadata.expires "next spring" is not an ISO date; cannot tell'],
}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferroflag", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def write_flags(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"format": 2, "flags": FLAGS}))
    return path


def report(result: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    assert result.returncode == 0, result.stderr
    return {entry["key"]: entry["reasons"] for entry in json.loads(result.stdout)["flags"]}


def test_expired_and_constant_flags_are_reported_and_the_others_are_not(tmp_path):
    path = write_flags(tmp_path)
    assert report(run("stale", str(path), "--now", "2026-12-04T12:00:00Z", "--json")) == STATIC
    text = run("stale", str(path), "--now", "2026-12-04")
    assert text.returncode == 0
    assert "7 flags of 13 flags may be deleted or simplified" in text.stdout
    assert '"expired" (owner "growth"):' in text.stdout


def test_expiry_is_judged_at_the_end_of_the_day_and_at_now(tmp_path):
    path = write_flags(tmp_path)
    assert "expired" not in report(run("stale", str(path), "--now", "2026-01-31T23:00:00+00:00", "--json"))
    assert "expired" in report(run("stale", str(path), "--now", "2026-02-01", "--json"))


def scrape_after(evaluated: list[str]) -> str:
    evaluator = FlagEvaluator(FLAGS)
    registry = CollectorRegistry()
    metrics.register(evaluator, registry=registry)
    for key in evaluated:
        evaluator.is_enabled(key, EvalContext("u", plan="pro"))
    return generate_latest(registry).decode()


def test_flags_never_evaluated_come_from_a_metrics_scrape(tmp_path):
    path = write_flags(tmp_path)
    used = ["targeted", "rolling-out", "split", "has-prerequisite", "expires-later"]
    scrape = tmp_path / "metrics.txt"
    scrape.write_text(scrape_after(used))
    found = report(run("stale", str(path), "--usage", str(scrape), "--now", "2026-12-04", "--json"))
    never = {key for key, reasons in found.items() if any("never evaluated" in r for r in reasons)}
    # has-prerequisite evaluated `targeted` as its prerequisite, which is not an evaluation of its own.
    assert never == {f["key"] for f in FLAGS} - set(used)
    # The same scrape from stdin and from the /metrics URL of a running app.
    assert (
        report(run("stale", str(path), "--usage", "-", "--now", "2026-12-04", "--json", stdin=scrape.read_text()))
        == found
    )
    body = scrape.read_bytes()

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://user:secret@127.0.0.1:{server.server_address[1]}/metrics?token=abc"
        assert report(run("stale", str(path), "--usage", url, "--now", "2026-12-04", "--json")) == found
    finally:
        server.shutdown()
        server.server_close()


def test_usage_errors_are_clean_and_never_show_a_credential(tmp_path):
    path = write_flags(tmp_path)
    not_metrics = tmp_path / "other.txt"
    not_metrics.write_text("up 1\n")
    result = run("stale", str(path), "--usage", str(not_metrics))
    assert result.returncode == 1
    assert "no ferroflag metrics" in result.stderr
    result = run("stale", str(path), "--usage", "http://user:secret@127.0.0.1:9/metrics?token=abc")
    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "secret" not in result.stderr
    assert "token" not in result.stderr
    assert "Traceback" not in result.stderr
    result = run("stale", str(path), "--now", "soon")
    assert result.returncode == 2
    assert "not an ISO date" in result.stderr


def test_stale_in_process(tmp_path, capsys):
    path = write_flags(tmp_path)
    assert main(["stale", str(path), "--now", "2026-12-04"]) == 0
    assert '"off":' in capsys.readouterr().out
