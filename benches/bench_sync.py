"""Does syncing slow evaluation down? (issue 4, performance)

Measures `is_enabled()` throughput in a tight loop without sync, then with a `FlagSyncClient`
polling a loopback flag service every 10 ms (`interval=0.01`, plus the round trip) that serves a new
document (new ETag) on every poll, interleaved round by round; prints both medians and their ratio
(target: within 10 %). Then polls
an unchanged document and shows the 304 counter next to the parse counter: a 304 costs no parse.

The flag service runs in a separate process, as it would in production, so that its Python
request handling does not compete with the measured loop for the GIL.

    python benches/bench_sync.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ferroflag import EvalContext, FlagEvaluator, FlagSyncClient

POLL_INTERVAL = 0.01
TARGET = 0.10


def document(version: int) -> bytes:
    """50 flags with rules and rollouts; the version moves one rollout so every document differs."""
    flags = [
        {
            "key": f"flag-{i}",
            "enabled": True,
            "percentage": (version % 90) + 5 if i == 0 else 50,
            "rules": [{"conditions": [{"attribute": "plan", "operator": "in", "values": ["enterprise"]}]}],
        }
        for i in range(50)
    ]
    return json.dumps({"flags": flags}).encode()


def serve(changing: bool) -> None:
    """The flag service (run in a child process): prints its port, serves until stdin closes.
    Keeps connections alive and alternates two pre-rendered bodies, so that it costs little CPU."""
    bodies = (document(1), document(2))
    state = {"version": 1}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if changing:
                state["version"] += 1
            etag = f'"v{state["version"]}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = bodies[state["version"] % 2]
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client closing its connection on stop() is no error worth a traceback

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sys.stdin.read()


class Service:
    def __init__(self, changing: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "changing" if changing else "unchanged"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{self.process.stdout.readline().strip()}"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def throughput(evaluator: FlagEvaluator, seconds: float) -> tuple[float, float]:
    """is_enabled() calls per second over about `seconds` of wall-clock time, and per second of this
    thread's CPU time (which leaves out the time other processes took the CPU: steadier on a busy
    machine, though it also leaves out waiting for the GIL)."""
    is_enabled = evaluator.is_enabled
    ctx = EvalContext("user-42", plan="free")
    calls = 0
    started, cpu_started = time.perf_counter(), time.thread_time()
    deadline = started + seconds
    while True:
        for _ in range(10_000):
            is_enabled("flag-7", ctx)
        calls += 10_000
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started), calls / max(time.thread_time() - cpu_started, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 short rounds (a smoke run)")
    parser.add_argument("--serve", choices=["changing", "unchanged"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve == "changing")
        return
    rounds, seconds = (2, 0.3) if args.quick else (7, 1.0)

    service = Service(changing=True)
    try:
        evaluator = FlagEvaluator()
        evaluator.update_json(document(0))
        without, with_sync, applied = [], [], []

        def measure_with_sync() -> None:
            client = FlagSyncClient(evaluator, service.url, interval=POLL_INTERVAL, timeout=2.0)
            if not client.start(wait=5):
                sys.exit(f"the loopback flag service did not answer: {client.status().last_error}")
            with_sync.append(throughput(evaluator, seconds))
            applied.append(client.status().successes / seconds)
            client.stop()

        throughput(evaluator, seconds / 4)  # warm-up
        for round_ in range(rounds):
            # Alternate the order, so that a drift in machine load hits both sides alike.
            if round_ % 2:
                measure_with_sync()
                without.append(throughput(evaluator, seconds))
            else:
                without.append(throughput(evaluator, seconds))
                measure_with_sync()
    finally:
        service.close()

    print(f"is_enabled() throughput, medians of {rounds} interleaved rounds of {seconds:g} s (calls/s):")
    print(f"  {'':36} {'wall clock':>12} {'thread CPU':>12}")
    medians = {}
    label = f"with sync ({statistics.median(applied):.0f} new documents/s)"
    for name, runs in (("without sync", without), (label, with_sync)):
        medians[name] = [statistics.median(run[i] for run in runs) for i in (0, 1)]
        print(f"  {name:36} {medians[name][0]:12,.0f} {medians[name][1]:12,.0f}")
    ratios = [medians[label][i] / medians["without sync"][i] for i in (0, 1)]
    verdicts = ["within" if r >= 1 - TARGET else "OUTSIDE" for r in ratios]
    print(f"  {'ratio with / without':36} {ratios[0]:12.3f} {ratios[1]:12.3f}")
    print(f"  target: within {TARGET:.0%}: {verdicts[0]} (wall clock), {verdicts[1]} (thread CPU)")

    service = Service(changing=False)
    try:
        evaluator = FlagEvaluator()
        client = FlagSyncClient(evaluator, service.url, interval=POLL_INTERVAL, timeout=2.0)
        client.start(wait=5)
        time.sleep(seconds)
        status = client.status()
        client.stop()
    finally:
        service.close()
    print(f"unchanged document, polled every 10 ms for {seconds:g} s:")
    print(
        f"  304s: {status.not_modified}, documents parsed: {status.successes}, "
        f"evaluator version: {evaluator.version} (a 304 neither parses nor swaps)"
    )


if __name__ == "__main__":
    main()
