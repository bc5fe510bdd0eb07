"""ferroflag end to end: a flag service, an app syncing from it, six users, one flag change.

    python examples/demo.py [FILE]            # what `make demo` runs; FILE defaults to examples/flags.json
    python examples/demo.py --static [FILE]   # no servers: evaluate FILE in-process for the same users

1. copies FILE to a temporary directory and serves the copy: `python -m ferroflag serve COPY --port 0`;
2. starts examples/fastapi_app.py on a free loopback port, syncing from that service every 0.5 s;
3. asks the app, as six users (each logged in by a bearer token from examples/users.json), for /checkout
   (gated by new-checkout), /theme (dark-mode's variant) and /dashboard (the app's own reasons), and prints
   each answer next to why, from `FlagEvaluator.explain()` on the same file;
4. raises new-checkout's rollout to 50% in the copy (write a temporary file, rename it over), shows the
   service's ETag change (304 before, 200 after), waits for the app to sync it and shows what changed;
5. stops both (SIGTERM, then kill as a last resort), also on errors and Ctrl-C.

Exit status 0; 1 when something fails or an HTTP answer disagrees with the in-process evaluator.
Loopback only; runs in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

from ferroflag import EvalContext, FlagEvaluator

EXAMPLES = Path(__file__).resolve().parent
USERS_FILE = EXAMPLES / "users.json"  # the example app's user table: the same users, the same attributes


def load_users(path: Path = USERS_FILE) -> list[tuple[EvalContext, str]]:
    """Each user's context, as the app builds it from its table, and the bearer token that logs them in."""
    users = []
    for user in json.loads(path.read_text())["users"]:
        fields = {name: user[name] for name in ("email", "plan", "country") if name in user}
        users.append((EvalContext(user["id"], properties=user.get("properties", {}), **fields), user["token"]))
    return users


USERS = [ctx for ctx, _ in load_users()]
TOKENS = {ctx.user_id: token for ctx, token in load_users()}
GATED, VARIANT, DASHBOARD = "new-checkout", "dark-mode", ("new-checkout", "dark-mode", "eu-pricing")
FLAG = {"GET /checkout": GATED, "GET /theme": VARIANT, "eu-pricing": "eu-pricing"}  # the flag behind each column
NEW_PERCENTAGE = 50
SYNC_INTERVAL = 0.5  # the app's poll interval, seconds
TIMEOUT = 15.0  # the longest any one wait may take, seconds

T = TypeVar("T")
# Loopback only: never through a proxy from the environment.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DemoError(Exception):
    pass


# --- HTTP --------------------------------------------------------------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """GET -> (status, headers, body); a 304 or 404 is an answer, not an error."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _http.open(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    return json.loads(get(url, headers)[2])


def headers_of(ctx: EvalContext) -> dict[str, str]:
    """The request headers of this user's requests: their login token. The app looks the user up and
    builds the flags' context from its own table; a header such as x-plan would count for nothing."""
    return {"authorization": f"Bearer {TOKENS[ctx.user_id]}"}


# --- what a user sees: over HTTP, and as the evaluator predicts it --------------------------------------


def ask(app: str, evaluator: FlagEvaluator, ctx: EvalContext) -> dict[str, str]:
    """What this user gets from the app: GET /checkout, /theme and /dashboard, as the table's cells.

    Each answer is checked against `evaluator` (the same file, in-process): a difference is an error.
    """
    headers = headers_of(ctx)
    status, _, body = get(f"{app}/checkout", headers)
    theme = get_json(f"{app}/theme", headers)["theme"]
    dashboard = get_json(f"{app}/dashboard", headers)
    seen = (status, json.loads(body).get("variant", ""), theme, dashboard)

    local = ctx
    gate = evaluator.evaluate(GATED, local)
    results = {key: evaluator.evaluate(key, local) for key in DASHBOARD}
    expected = (
        200 if gate.enabled else 404,
        gate.variant,
        evaluator.evaluate(VARIANT, local).variant or "light",
        {key: {"enabled": r.enabled, "variant": r.variant, "reason": r.reason} for key, r in results.items()},
    )
    if seen != expected:
        raise DemoError(f"the app answered {ctx.user_id} {seen}, but FlagEvaluator.evaluate() says {expected}")
    eu = dashboard["eu-pricing"]
    return {
        "GET /checkout": f"200 new, {seen[1]}" if status == 200 else str(status),
        "GET /theme": theme,
        "eu-pricing": f"on, {eu['variant']}" if eu["enabled"] else "off",
    }


def why(evaluator: FlagEvaluator, key: str, ctx: EvalContext) -> str:
    """One line from `explain()`: the rule that applied, or the rollout bucket against the percentage."""
    trace = evaluator.explain(key, ctx)
    if trace is None:
        return "no such flag"
    reason = trace["reason"]
    if reason in ("disabled", "prerequisite_failed", "no_match"):
        return WHY[reason]
    if reason == "rule_match":
        rule = next(r for r in trace["rules"] if r["applied"])
        tests = [f"{c['attribute']} {c['operator']} {', '.join(map(str, c['values']))}" for c in rule["conditions"]]
        return "rule: " + (" and ".join(tests) or "everyone")
    if (rollout := trace["rollout"]) is not None:
        bucket, percentage = f"bucket {rollout['bucket']:.1f}", f"{rollout['percentage']:g}%"
        return f"{bucket} < {percentage}: in rollout" if rollout["included"] else f"{bucket} >= {percentage}"
    return WHY["default"]


# --- processes -----------------------------------------------------------------------------------------

Children = dict[str, "subprocess.Popen[bytes]"]


def wait_for(what: str, check: Callable[[], T | None], children: Children) -> T:
    """Polls `check` until it returns something, a child exits, or TIMEOUT passes."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                raise DemoError(f"{name} (pid {child.pid}) exited with {child.returncode} while waiting for {what}")
        try:
            result = check()
        except (OSError, ValueError, KeyError):  # not up yet, or half-written
            result = None
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {TIMEOUT:g} s waiting for {what}")
        time.sleep(0.05)


def start_flag_service(copy: Path, logs: Path, children: Children) -> str:
    """`ferroflag serve COPY --port 0`; returns the URL from its first stdout line."""
    command = [sys.executable, "-m", "ferroflag", "serve", str(copy), "--port", "0", "--poll-interval", "0.2"]
    with open(logs / "serve.out", "wb") as out, open(logs / "serve.log", "wb") as log:
        children["flag service"] = subprocess.Popen(command, stdout=out, stderr=log, stdin=subprocess.DEVNULL)

    def url() -> str | None:  # "ferroflag: serving FILE at URL"
        first, newline, _ = (logs / "serve.out").read_text().partition("\n")
        return first.rsplit(" at ", 1)[1] if newline else None

    flags_url = wait_for("the flag service's URL", url, children)
    print(f"1. flag service  python -m ferroflag serve {copy} --port 0 --poll-interval 0.2")
    print(f"                 serving {flags_url}  (pid {children['flag service'].pid})")
    return flags_url


def start_app(flags_url: str, logs: Path, children: Children) -> str:
    """examples/fastapi_app.py on a free loopback port, syncing from `flags_url`; returns its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, FERROFLAG_URL=flags_url.removesuffix("/api/flags"), FERROFLAG_PATH="/api/flags")
    env.update(FERROFLAG_INTERVAL=str(SYNC_INTERVAL), NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    env.pop("FERROFLAG_FILE", None)
    command = [sys.executable, str(EXAMPLES / "fastapi_app.py"), "--port", str(port)]
    with open(logs / "app.log", "wb") as log:
        children["app"] = subprocess.Popen(command, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    app = f"http://127.0.0.1:{port}"

    def ready() -> dict[str, Any] | None:
        health: dict[str, Any] = get_json(f"{app}/healthz")
        return health if health["sync"]["ready"] else None

    health = wait_for("the app's /healthz", ready, children)
    print(f"2. example app   FERROFLAG_URL={env['FERROFLAG_URL']} python examples/fastapi_app.py --port {port}")
    print(f"                 synced {health['flags']} flags (ETag {short(health['sync']['etag'])}),", end=" ")
    print(f"polls every {SYNC_INTERVAL:g} s  (pid {children['app'].pid})")
    return app


def stop(children: Children) -> list[str]:
    """SIGTERM each child (the app first), wait, kill if it must; returns a line per child."""
    lines = []
    for name, child in reversed(children.items()):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=5)
            how = ""
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)
            how = "killed after 5 s, "
        code = child.returncode  # uvicorn re-raises the SIGTERM once it has shut down cleanly: -15
        how += f"exited {code}" if code >= 0 else f"stopped on {signal.Signals(-code).name}"
        lines.append(f"{name} (pid {child.pid}) {how}")
    return lines


def short(etag: str) -> str:
    return etag[:13] + '…"' if len(etag) > 16 else etag


# --- the demo ------------------------------------------------------------------------------------------


def change_flag(copy: Path) -> str:
    """Raises the gated flag's rollout in `copy`: a new file renamed over it, as a deploy would."""
    document = json.loads(copy.read_text(encoding="utf-8"))
    flag = next((f for f in document["flags"] if f["key"] == GATED), None)
    if flag is None:
        raise DemoError(f"the flag file has no flag {GATED!r} to change")
    old, flag["percentage"] = flag.get("percentage") or 0, NEW_PERCENTAGE
    tmp = copy.with_name(copy.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, copy)
    return f"{GATED} rollout {old:g}% -> {NEW_PERCENTAGE}% (write {tmp.name}, rename over {copy.name})"


def demo(source: Path) -> int:
    started = time.monotonic()
    children: Children = {}
    tmp = Path(tempfile.mkdtemp(prefix="ferroflag-demo-"))
    print("ferroflag demo: a flag service, an app syncing from it, six users, one flag change\n")
    try:
        copy = tmp / "flags.json"
        shutil.copyfile(source, copy)
        flags_url = start_flag_service(copy, tmp, children)
        app = start_app(flags_url, tmp, children)
        evaluator = FlagEvaluator()
        evaluator.load_file(copy)

        print(f"\n3. What each user gets from the app, and why ({GATED}, from FlagEvaluator.explain()):")
        print(f"   {'user':<6} {'plan':<11} {'country':<8} ", end="")
        print(f"{'GET /checkout':<15} {'GET /theme':<11} {'eu-pricing':<11} why /checkout")
        before = {}
        for ctx in USERS:
            before[ctx.user_id] = row = ask(app, evaluator, ctx)
            print(f"   {ctx.user_id:<6} {ctx.plan:<11} {ctx.country:<8} ", end="")
            print(f"{row['GET /checkout']:<15} {row['GET /theme']:<11} {row['eu-pricing']:<11} ", end="")
            print(why(evaluator, GATED, ctx))
        print(
            f"   (eu-pricing is from GET /dashboard, which also gives the app's reasons; /theme: {VARIANT}'s variant)"
        )

        # The app's sync client asks for gzip, and gets the `-gzip` ETag: ask the same way.
        gzip = {"Accept-Encoding": "gzip"}
        old_etag = get(flags_url, gzip)[1]["ETag"]
        status = get(flags_url, {**gzip, "If-None-Match": old_etag})[0]
        if status != HTTPStatus.NOT_MODIFIED:
            raise DemoError(f"the flag service answered {status} to If-None-Match {old_etag}, not 304")
        print(f"\n4. Change: {change_flag(copy)}")
        changed_at = time.monotonic()
        print(f"   before: flag service ETag {short(old_etag)}; If-None-Match it -> 304 Not Modified")

        def reloaded() -> str | None:  # the new ETag, once the old one no longer gets a 304
            status, headers, _ = get(flags_url, {**gzip, "If-None-Match": old_etag})
            return str(headers["ETag"]) if status == HTTPStatus.OK else None

        new_etag = wait_for("the flag service to reload the file", reloaded, children)
        print(f"   after:  flag service ETag {short(new_etag)}; If-None-Match the old one -> 200 OK", end="")
        print(f"  ({time.monotonic() - changed_at:.1f} s)")
        wait_for("the app to sync", lambda: get_json(f"{app}/healthz")["sync"]["etag"] == new_etag or None, children)
        print(f"   the app's sync client has ETag {short(new_etag)} after {time.monotonic() - changed_at:.1f} s")

        evaluator.load_file(copy)
        changed, unchanged = [], []
        for ctx in USERS:
            row, was = ask(app, evaluator, ctx), before[ctx.user_id]
            for column in (c for c in row if row[c] != was[c]):
                reason = why(evaluator, FLAG[column], ctx)
                changed.append(f"   {ctx.user_id:<6} {column}: {was[column]} -> {row[column]}   why: {reason}")
            if row == was:
                unchanged.append(ctx.user_id)
        print("   changed answers:" if changed else "   no user's answer changed")
        print("\n".join(changed))
        print(f"   unchanged: {', '.join(unchanged) or 'nobody'}")
        print("   every HTTP answer, before and after, agrees with FlagEvaluator.evaluate() on the same file")
        return 0
    except (DemoError, OSError) as error:
        print(f"\ndemo failed: {error}")
        for name in ("serve.log", "app.log"):
            if (tmp / name).exists():
                tail = (tmp / name).read_text(errors="replace").splitlines()[-10:]
                print(f"--- last lines of {name}:\n" + "\n".join(tail))
        return 1
    finally:
        lines = stop(children)
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"\n5. Shut down: {'; '.join(lines) or 'nothing was running'}. ({time.monotonic() - started:.1f} s)")


# --- --static: the flag file alone, in-process ---------------------------------------------------------

WHY = {  # one per reason of docs/spec.md §2
    "rule_match": "a targeting rule matched",
    "percentage": "inside the percentage rollout",
    "percentage_excluded": "outside the percentage rollout",
    "no_match": "no targeting rule matched, and no rollout",
    "prerequisite_failed": "a prerequisite flag is off",
    "default": "flag on for everyone",
    "disabled": "flag switched off",
    "not_found": "no such flag",
}


def static(path: Path) -> int:
    evaluator = FlagEvaluator()
    evaluator.load_file(path)
    print(f"Loaded {len(evaluator)} flags from {path} (snapshot version {evaluator.version})")
    for warning in evaluator.warnings:
        print(f"  warning: {warning}")
    for ctx in USERS:
        print(f"\n{ctx!r}")
        for key, result in evaluator.evaluate_all(ctx).items():
            state = "ON " if result.enabled else "off"
            variant = f" variant={result.variant!r}" if result.variant else ""
            print(f"  {state} {key:<14}{variant:<20} {WHY[result.reason]} ({result.reason})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=EXAMPLES / "flags.json", help="the flag file")
    parser.add_argument("--static", action="store_true", help="no servers: evaluate FILE in-process")
    args = parser.parse_args(argv)
    if args.static:
        return static(args.file)
    # SIGTERM unwinds like Ctrl-C does, so the `finally` stops the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return demo(args.file)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
