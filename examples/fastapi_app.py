"""A FastAPI app whose endpoints are driven by ferroflag flags.

    uvicorn examples.fastapi_app:app                 # flags from examples/flags.json, reloaded when it changes
    python examples/fastapi_app.py --port 8000
    FERROFLAG_FILE=/etc/flags.json uvicorn examples.fastapi_app:app
    FERROFLAG_URL=http://127.0.0.1:8080 uvicorn examples.fastapi_app:app   # from `ferroflag serve flags.json`

FERROFLAG_URL is polled at FERROFLAG_PATH (default `/api/flags`; empty: the URL is the document itself)
every FERROFLAG_INTERVAL seconds (default 10). The flags are evaluated for the logged-in user: a bearer
token from `examples/users.json` (the app's user table) names the user, whose plan, country and email
come from that table, never from what the client sends:

    curl -H 'Authorization: Bearer bob-token' localhost:8000/checkout     # on: bob is on the enterprise plan
    curl -H 'Authorization: Bearer erin-token' localhost:8000/checkout    # 404 for most users
    curl -H 'x-plan: enterprise' localhost:8000/checkout                  # 404: signed out, headers count for nothing
    curl -H 'Authorization: Bearer bob-token' localhost:8000/dashboard
    curl localhost:8000/metrics       # Prometheus: evaluations by flag, variant and reason; the sync's state
    curl localhost:8000/exposures     # the last exposures of the tracked `dark-mode` experiment

`dark-mode` is tracked (`"metadata": {"track": true}` in examples/flags.json): each user it is served to is
an exposure, handed in batches to a sink. Here the sink keeps the last 100 for `/exposures`; a real app
would send them to its analytics pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from ferroflag import EvalContext, EvalResult, FlagEvaluator, FlagFileWatcher, FlagSyncClient, metrics
from ferroflag.exposures import Exposure
from ferroflag.fastapi import FerroflagFastAPI, FlagDependencies, Flags, setup
from ferroflag.sources import FlagSource
from prometheus_client import CollectorRegistry, make_asgi_app

DEFAULT_FLAGS = Path(__file__).with_name("flags.json")
USERS_FILE = Path(__file__).with_name("users.json")
DASHBOARD_FLAGS = ("new-checkout", "dark-mode", "eu-pricing")
THEMES = {"midnight": "#0b1021", "slate": "#2f3640", "": "#ffffff"}


def load_users(path: Path = USERS_FILE) -> dict[str, dict[str, Any]]:
    """The user table, by login token."""
    return {user["token"]: user for user in json.loads(path.read_text())["users"]}


USERS = load_users()


# --- who is logged in, and so who the flags are for ------------------------------------------------------


async def current_user(authorization: Annotated[str, Header()] = "") -> dict[str, Any] | None:
    """The logged-in user (the app's auth dependency: here a bearer token looked up in the table), or None."""
    scheme, _, token = authorization.partition(" ")
    return USERS.get(token) if scheme.lower() == "bearer" else None


async def flag_context(user: Annotated[dict[str, Any] | None, Depends(current_user)]) -> EvalContext:
    """The flags' context from the user's record: nothing in it comes from the client."""
    if user is None:
        return EvalContext("")  # signed out: an anonymous context (rules on plan or email never match)
    return EvalContext(
        user["id"],
        email=user.get("email", ""),
        plan=user.get("plan", ""),
        country=user.get("country", ""),
        properties=user.get("properties", {}),
    )


# Once, next to the auth dependencies: every gate and handler below evaluates for this context.
flag_deps = FlagDependencies(context=flag_context)
UserFlags = Annotated[Flags, Depends(flag_deps.get_flags)]


def sync_from_env(evaluator: FlagEvaluator, env: dict[str, str] | None = None) -> FlagSource:
    """The flag source the environment names: FERROFLAG_URL (a flag service or a static document),
    else FERROFLAG_FILE, else `examples/flags.json`."""
    env = dict(os.environ) if env is None else env
    if url := env.get("FERROFLAG_URL"):
        return FlagSyncClient(
            evaluator,
            url,
            path=env.get("FERROFLAG_PATH", "/api/flags"),
            interval=float(env.get("FERROFLAG_INTERVAL", "10")),
        )
    return FlagFileWatcher(evaluator, env.get("FERROFLAG_FILE") or DEFAULT_FLAGS)


def create_app(evaluator: FlagEvaluator | None = None, sync: FlagSource | None = None) -> FastAPI:
    """The app; with no `sync`, the source comes from the environment (`sync_from_env`)."""
    evaluator = FlagEvaluator() if evaluator is None else evaluator
    source = sync_from_env(evaluator) if sync is None else sync
    recent: deque[Exposure] = deque(maxlen=100)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In each worker (after any fork): exposures go to the sink until shutdown flushes them.
        stream = evaluator.on_exposure(recent.extend, interval=0.5)
        try:
            yield
        finally:
            stream.close()

    app = FastAPI(title="ferroflag example", lifespan=lifespan)
    # The app's flag context, once; the lifespan starts the sync in each worker and stops it at shutdown.
    setup(app, evaluator, context=flag_deps, sync=source)
    # Its own registry, so that two apps in one process (tests) each report their own evaluator.
    registry = CollectorRegistry()
    metrics.register(evaluator, source, registry=registry)
    app.mount("/metrics", make_asgi_app(registry=registry))

    @app.get("/exposures")
    async def exposures() -> list[dict[str, Any]]:
        """The last exposures the sink received (tracked flags only, one per user and flag version)."""
        return [exposure._asdict() for exposure in recent]

    @app.get("/checkout", dependencies=[Depends(flag_deps.require_flag("new-checkout"))])
    async def checkout(flags: UserFlags) -> dict[str, str]:
        """The new checkout: 404 for users the flag is off for."""
        return {"checkout": "new", "variant": flags.variant("new-checkout")}

    @app.get("/theme")
    async def theme(flags: UserFlags) -> dict[str, str]:
        """The variant picks the theme; users the flag is off for get the light one."""
        variant = flags.variant("dark-mode")
        return {"theme": variant or "light", "background": THEMES.get(variant, THEMES[""])}

    @app.get("/pricing")
    def pricing(
        result: Annotated[EvalResult, Depends(flag_deps.require_flag("eu-pricing", detail="EU pricing only"))],
    ) -> dict[str, str]:
        """A sync endpoint gated with the flag's result as a parameter."""
        return {"currency": result.variant}

    @app.get("/dashboard")
    async def dashboard(flags: UserFlags) -> dict[str, dict[str, Any]]:
        """What this user sees, flag by flag (each evaluated once for the request)."""
        return {
            key: {"enabled": flags.is_enabled(key), "variant": flags.variant(key), "reason": flags.evaluate(key).reason}
            for key in DASHBOARD_FLAGS
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """The sync's state: ready, stale, last error."""
        state = FerroflagFastAPI.of(app)
        return {"flags": len(state.evaluator), "sync": state.sync.status().to_dict() if state.sync else None}

    return app


app = create_app()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
