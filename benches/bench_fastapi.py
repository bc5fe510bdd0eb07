"""What the FastAPI flag dependencies cost per request: requests/s of gated endpoints against an
ungated one, measured in the same run, rounds interleaved so drift hits every endpoint alike.

    python benches/bench_fastapi.py            # both modes, full counts
    python benches/bench_fastapi.py --quick    # a smoke run (a few seconds)
    python benches/bench_fastapi.py --mode asgi|uvicorn

Modes:
    asgi     in process, through httpx.ASGITransport: the app's own cost, no sockets.
    uvicorn  a uvicorn server in a child process on 127.0.0.1, one keep-alive httpx client in this one.

Endpoints (one evaluator, flags on for everyone; the app's context from headers, `header_context`):
    /ungated              a plain async endpoint: the baseline
    /gated                dependencies=[Depends(require_flag("new-checkout"))]
    /dashboard            FlagsDep, three flags read
    /gate-decorator       @feature_gate("new-checkout")
    /user/gated-user-context   require_flag from FlagDependencies(context=...), whose context function
                          depends on a header dependency (as one built from the auth user would); on a
                          sub-app mounted at /user, set up with that FlagDependencies as its context
                          (one app, one context)
    /user/ungated-user-dep     ungated, on the same sub-app, with only that header dependency: the share
                          of the line above that is the app's own dependency, not ferroflag's

Columns: req/s is the median over the bursts (wall clock, so other load on the machine shows in it);
CPU us/req is the CPU time summed over all bursts divided by the requests (asgi: this process, client
included, the client's share being the same for every endpoint; uvicorn: the server process, read
from /proc in ticks of 10 ms), which the load of other processes barely moves.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Annotated

import fastapi
import httpx
from fastapi import Depends, FastAPI, Header
from ferroflag import EvalContext, FlagEvaluator
from ferroflag.fastapi import FlagDependencies, FlagsDep, feature_gate, header_context, require_flag, setup

FLAGS = [
    {"key": "new-checkout", "enabled": True},
    {"key": "dark-mode", "enabled": True, "variants": {"midnight": 2, "slate": 1}},
    {"key": "eu-pricing", "enabled": True, "default_variant": "eur"},
]
HEADERS = {"x-user-id": "user-42", "x-plan": "team", "cf-ipcountry": "DE"}


async def user_id(x_user_id: Annotated[str, Header()] = "") -> str:
    return x_user_id


async def context_with_dependency(uid: Annotated[str, Depends(user_id)]) -> EvalContext:
    return EvalContext(uid)


USER_DEPS = FlagDependencies(context=context_with_dependency)


def create_app() -> FastAPI:
    evaluator = FlagEvaluator(FLAGS)
    app = FastAPI()
    setup(app, evaluator, context=header_context)
    user_app = FastAPI()
    setup(user_app, evaluator, context=USER_DEPS)

    @app.get("/ungated")
    async def ungated() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/gated", dependencies=[Depends(require_flag("new-checkout"))])
    async def gated() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/dashboard")
    async def dashboard(flags: FlagsDep) -> dict[str, bool]:
        return {key: flags.is_enabled(key) for key in ("new-checkout", "dark-mode", "eu-pricing")}

    @app.get("/gate-decorator")
    @feature_gate("new-checkout")
    async def gate_decorator() -> dict[str, bool]:
        return {"ok": True}

    @user_app.get("/gated-user-context", dependencies=[Depends(USER_DEPS.require_flag("new-checkout"))])
    async def gated_user_context() -> dict[str, bool]:
        return {"ok": True}

    @user_app.get("/ungated-user-dep", dependencies=[Depends(user_id)])
    async def ungated_user_dep() -> dict[str, bool]:
        return {"ok": True}

    app.mount("/user", user_app)
    return app


PATHS = [
    "/ungated",
    "/gated",
    "/dashboard",
    "/gate-decorator",
    "/user/gated-user-context",
    "/user/ungated-user-dep",
]


class Samples:
    """Per path: the wall-clock req/s of each burst, and the CPU seconds and requests summed."""

    def __init__(self) -> None:
        self.rps: dict[str, list[float]] = {path: [] for path in PATHS}
        self.cpu: dict[str, float] = dict.fromkeys(PATHS, 0.0)
        self.requests: dict[str, int] = dict.fromkeys(PATHS, 0)


def interleaved(rounds: int, requests: int, run: Callable[[str, int], tuple[float, float]]) -> Samples:
    """Runs `run(path, n)` (returning wall and CPU seconds) for each path in turn, round after round:
    short bursts, so that the machine's load drifts over every endpoint alike."""
    samples = Samples()
    for _ in range(rounds):
        for path in PATHS:
            wall, cpu = run(path, requests)
            samples.rps[path].append(requests / wall)
            samples.cpu[path] += cpu
            samples.requests[path] += requests
    return samples


def bench_asgi(requests: int, rounds: int) -> Samples:
    """In process; the CPU time is this process's (client and app: the client's share is the same for all)."""
    loop = asyncio.new_event_loop()
    transport = httpx.ASGITransport(app=create_app())
    client = httpx.AsyncClient(transport=transport, base_url="http://bench", headers=HEADERS)

    async def burst(path: str, n: int) -> None:
        for _ in range(n):
            response = await client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")

    def run(path: str, n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        loop.run_until_complete(burst(path, n))
        return time.perf_counter() - wall, time.process_time() - cpu

    try:
        for path in PATHS:  # warm up
            run(path, 200)
        return interleaved(rounds, requests, run)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False, http="h11")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc; NaN where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_uvicorn(requests: int, rounds: int) -> Samples:
    """A uvicorn server in a child process; the CPU time is the server's."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=5) as client:
            deadline = time.monotonic() + 20  # bounded wait for the server
            while True:
                try:
                    client.get("/ungated")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.05)

            def run(path: str, n: int) -> tuple[float, float]:
                wall, cpu = time.perf_counter(), process_cpu(server.pid)
                for _ in range(n):
                    response = client.get(path)
                    if response.status_code != 200:
                        raise RuntimeError(f"{path}: HTTP {response.status_code}")
                return time.perf_counter() - wall, process_cpu(server.pid) - cpu

            for path in PATHS:  # warm up
                run(path, 200)
            return interleaved(rounds, requests, run)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def report(mode: str, samples: Samples, requests: int, rounds: int) -> None:
    print(f"\n{mode}: {rounds} rounds x {requests} sequential requests per endpoint, interleaved")
    print(f"{'endpoint':<24} {'req/s':>8} {'vs ungated':>11} {'CPU us/req':>11} {'CPU overhead us':>16}")
    base_rps = statistics.median(samples.rps["/ungated"])
    base_cpu = samples.cpu["/ungated"] / samples.requests["/ungated"]
    for path in PATHS:
        rps = statistics.median(samples.rps[path])
        cpu = samples.cpu[path] / samples.requests[path]
        print(f"{path:<24} {rps:>8.0f} {rps / base_rps:>10.3f}x {cpu * 1e6:>11.1f} {(cpu - base_cpu) * 1e6:>+16.1f}")
    gated = statistics.median(samples.rps["/gated"])
    print(f"{mode}: gated/ungated = {gated:.0f}/{base_rps:.0f} req/s (median burst) = {gated / base_rps:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="requests/s of flag-gated FastAPI endpoints vs an ungated one")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--mode", choices=["asgi", "uvicorn", "both"], default="both")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    requests, rounds = (100, 4) if args.quick else (250, 40)
    print(
        f"ferroflag FastAPI bench: Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"httpx {httpx.__version__}, {os.cpu_count()} CPUs"
    )
    modes: list[tuple[str, Callable[[int, int], Samples]]] = []
    if args.mode in ("asgi", "both"):
        modes.append(("asgi", bench_asgi))
    if args.mode in ("uvicorn", "both"):
        modes.append(("uvicorn", bench_uvicorn))
    for mode, bench in modes:
        report(mode, bench(requests, rounds), requests, rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
