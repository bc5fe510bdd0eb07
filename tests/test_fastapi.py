"""The FastAPI adapter (`ferroflag.fastapi`): TestClient in process, and a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest

fastapi = pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
testclient = pytest.importorskip("fastapi.testclient")

import ferroflag.fastapi  # noqa: E402
from fastapi import APIRouter, Depends, FastAPI, Header, Request  # noqa: E402
from ferroflag import EvalContext, EvalResult, FlagEvaluator, FlagFileWatcher, FlagSyncClient  # noqa: E402
from ferroflag.fastapi import (  # noqa: E402
    ClientFlagsDep,
    ContextDep,
    FerroflagFastAPI,
    FlagDependencies,
    Flags,
    FlagsDep,
    client_flags,
    feature_gate,
    get_context,
    header_context,
    require_flag,
    setup,
    sync_lifespan,
)
from ferroflag.server import FlagService  # noqa: E402
from ferroflag.sources import FlagSource  # noqa: E402
from ferroflag.testing import TestData, bind  # noqa: E402

TestClient = testclient.TestClient
pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
ALICE = {"x-user-id": "alice"}
BOB = {"x-user-id": "bob"}


def only_for(key: str, attribute: str, values: list[str], variant: str = "") -> dict[str, Any]:
    """A flag on for the users whose `attribute` is in `values`, off for (practically) everyone else."""
    return {
        "key": key,
        "enabled": True,
        "rules": [{"conditions": [{"attribute": attribute, "operator": "in", "values": values}], "variant": variant}],
    }


def beta_for_alice() -> FlagEvaluator:
    return FlagEvaluator([only_for("beta", "user_id", ["alice"], variant="v2")])


class CountingEvaluator:
    """A spy in front of a real evaluator: counts `evaluate` calls per key."""

    def __init__(self, inner: FlagEvaluator) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def evaluate(self, key: str, ctx: EvalContext) -> EvalResult:
        self.calls[key] += 1
        return self.inner.evaluate(key, ctx)


def sync_threads() -> int:
    """Native threads named "ferroflag-sync" in this process (threading.enumerate() cannot see them)."""
    count = 0
    for comm in Path("/proc/self/task").glob("*/comm"):
        with contextlib.suppress(OSError):  # a thread may exit while we look
            count += comm.read_text().strip() == "ferroflag-sync"
    return count


def settled_sync_threads() -> int:
    """The count of sync threads once any left by earlier tests (stopped mid-connect) have exited."""
    wait_for(lambda: sync_threads() == 0, timeout=3)
    return sync_threads()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def write_flags(path: Path, flags: list[dict[str, Any]]) -> None:
    """Atomically, as a flag file should be written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flags": flags}))
    os.replace(tmp, path)


@contextlib.contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serves `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", access_log=False, ws="none", http="h11"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started or not thread.is_alive()), "uvicorn did not start in time"
        assert server.started, "uvicorn failed to start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop in time"


@pytest.fixture
def flag_service(tmp_path: Path) -> Iterator[tuple[FlagService, Path]]:
    """The flag service on loopback, serving a file that starts with `beta` on for alice."""
    path = tmp_path / "flags.json"
    write_flags(path, [only_for("beta", "user_id", ["alice"], variant="v2")])
    with FlagService(path, port=0, poll_interval=0.05, shutdown_grace=1.0) as service:
        yield service, path


def gated_app(evaluator: FlagEvaluator, **setup_kwargs: Any) -> FastAPI:
    """An app gating /beta; the context from the request headers unless `context=` says otherwise (the
    tests send users as headers: header_context is the explicit, trusted-proxy choice)."""
    app = FastAPI()
    setup(app, evaluator, **{"context": header_context, **setup_kwargs})

    @app.get("/beta", dependencies=[Depends(require_flag("beta"))])
    async def beta() -> dict[str, bool]:
        return {"beta": True}

    @app.get("/open")
    async def open_() -> dict[str, bool]:
        return {"open": True}

    return app


# --- gating ----------------------------------------------------------------------------------------------


def test_require_flag_gates_per_user() -> None:
    client = TestClient(gated_app(beta_for_alice()))
    assert client.get("/beta", headers=ALICE).json() == {"beta": True}
    response = client.get("/beta", headers=BOB)
    assert response.status_code == 404
    assert response.json() == {"detail": "Feature not available"}
    assert client.get("/beta").status_code == 404  # no user header: user_id ""
    assert client.get("/open", headers=BOB).status_code == 200


def test_require_flag_as_parameter_gives_the_result_and_custom_response() -> None:
    app = FastAPI()
    setup(app, beta_for_alice(), context=header_context)

    @app.get("/param")
    async def param(
        result: Annotated[EvalResult, Depends(require_flag("beta", status_code=403, detail={"why": "beta only"}))],
    ) -> dict[str, str]:
        return {"variant": result.variant, "reason": result.reason}

    client = TestClient(app)
    assert client.get("/param", headers=ALICE).json() == {"variant": "v2", "reason": "rule_match"}
    response = client.get("/param", headers=BOB)
    assert (response.status_code, response.json()) == (403, {"detail": {"why": "beta only"}})


def test_require_flag_on_a_router_and_unknown_flags_are_off() -> None:
    router = APIRouter(dependencies=[Depends(require_flag("beta"))])

    @router.get("/a")
    async def a() -> str:
        return "a"

    app = FastAPI()
    setup(app, beta_for_alice(), context=header_context)
    app.include_router(router, prefix="/r")

    @app.get("/ghost", dependencies=[Depends(require_flag("no-such-flag"))])
    async def ghost() -> str:
        return "never"

    client = TestClient(app)
    assert client.get("/r/a", headers=ALICE).json() == "a"
    assert client.get("/r/a", headers=BOB).status_code == 404
    assert client.get("/ghost", headers=ALICE).status_code == 404


def test_require_flag_rejects_a_bad_key() -> None:
    with pytest.raises(TypeError):
        require_flag("")


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_sync_and_async_endpoints_are_gated(kind: str) -> None:
    app = FastAPI()
    setup(app, beta_for_alice(), context=header_context)
    calls: list[str] = []

    if kind == "async":

        async def endpoint(flags: FlagsDep) -> dict[str, str]:
            calls.append(threading.current_thread().name)
            return {"variant": flags.variant("beta")}
    else:

        def endpoint(flags: FlagsDep) -> dict[str, str]:
            calls.append(threading.current_thread().name)
            return {"variant": flags.variant("beta")}

    app.get("/dep", dependencies=[Depends(require_flag("beta"))])(endpoint)
    app.get("/gate")(feature_gate("beta")(endpoint))
    client = TestClient(app)
    for path in ("/dep", "/gate"):
        assert client.get(path, headers=ALICE).json() == {"variant": "v2"}
        assert client.get(path, headers=BOB).status_code == 404
    assert len(calls) == 2


@pytest.mark.parametrize("endpoint_kind", ["async", "sync"])
@pytest.mark.parametrize("fallback_kind", ["async", "sync"])
def test_feature_gate_calls_the_fallback_with_the_same_arguments(endpoint_kind: str, fallback_kind: str) -> None:
    async def old_async(item_id: int, flags: FlagsDep, q: str = "") -> dict[str, Any]:
        return {"version": "old", "item": item_id, "q": q, "beta": flags.is_enabled("beta")}

    def old_sync(item_id: int, flags: FlagsDep, q: str = "") -> dict[str, Any]:
        return {"version": "old", "item": item_id, "q": q, "beta": flags.is_enabled("beta"), "sync": True}

    async def new_async(item_id: int, flags: FlagsDep, q: str = "") -> dict[str, Any]:
        return {"version": "new", "item": item_id, "q": q, "variant": flags.variant("beta")}

    def new_sync(item_id: int, flags: FlagsDep, q: str = "") -> dict[str, Any]:
        return {"version": "new", "item": item_id, "q": q, "variant": flags.variant("beta"), "sync": True}

    fallback = old_async if fallback_kind == "async" else old_sync
    endpoint = new_async if endpoint_kind == "async" else new_sync
    app = FastAPI()
    setup(app, beta_for_alice(), context=header_context)
    app.get("/items/{item_id}")(feature_gate("beta", fallback=fallback)(endpoint))
    client = TestClient(app)

    on = client.get("/items/7", params={"q": "shoes"}, headers=ALICE).json()
    assert (on["version"], on["item"], on["q"], on["variant"]) == ("new", 7, "shoes", "v2")
    assert on.get("sync", False) is (endpoint_kind == "sync")
    off = client.get("/items/8", params={"q": "hats"}, headers=BOB).json()
    assert (off["version"], off["item"], off["q"], off["beta"]) == ("old", 8, "hats", False)
    assert off.get("sync", False) is (fallback_kind == "sync")
    assert client.get("/items/nope", headers=ALICE).status_code == 422  # validation still runs


def test_feature_gate_without_fallback_and_decoration_errors() -> None:
    app = FastAPI()
    setup(app, beta_for_alice(), context=header_context)

    @app.get("/g")
    @feature_gate("beta", status_code=410, detail="gone")
    def g() -> str:
        return "on"

    client = TestClient(app)
    assert client.get("/g", headers=ALICE).json() == "on"
    assert (client.get("/g", headers=BOB).status_code, client.get("/g", headers=BOB).json()) == (
        410,
        {"detail": "gone"},
    )

    def other(unrelated: int) -> None: ...

    def plain(page: int) -> None: ...

    with pytest.raises(TypeError, match="cannot take the arguments"):
        feature_gate("beta", fallback=other)(plain)
    with pytest.raises(TypeError, match="already gated"):
        feature_gate("beta")(g)


def test_trap_feature_gate_above_the_route_decorator_raises_at_import() -> None:
    """Trap: `@feature_gate(...)` written above `@app.get(...)` was silently ignored (the route holds the
    plain endpoint: a disabled flag served 200). Now it raises where it is written, saying where it goes."""
    app = gated_app(FlagEvaluator([{"key": "beta", "enabled": False}]))
    router = APIRouter()
    with pytest.raises(TypeError, match=r"above the route decorator .*Put it below"):

        @feature_gate("beta")
        @app.get("/wrong")
        async def wrong() -> str:
            return "served"

    with pytest.raises(TypeError, match="above the route decorator"):

        @FlagDependencies().feature_gate("beta", fallback=None)
        @router.post("/wrong-too")
        def wrong_too() -> str:
            return "served"

    @app.get("/right")
    @feature_gate("beta")
    async def right() -> str:
        return "served"

    assert TestClient(app).get("/right").status_code == 404

    # The same function registered ungated on one path and gated on another is not a misplaced decorator.
    async def both() -> str:
        return "served"

    app.get("/ungated")(both)
    app.get("/gated")(feature_gate("beta")(both))
    client = TestClient(app)
    assert (client.get("/ungated").status_code, client.get("/gated").status_code) == (200, 404)


def test_trap_require_flag_default_true_before_the_flag_exists() -> None:
    """Trap: `require_flag("kill-switch", default=True)` was a TypeError, so on a cold start with no
    flags every gated route answered 404. `default` is the answer while no flag has that key."""
    evaluator = FlagEvaluator()  # a cold start: nothing synced yet
    app = gated_app(evaluator)

    @app.get("/checkout", dependencies=[Depends(require_flag("checkout-enabled", default=True))])
    async def checkout() -> str:
        return "open"

    @app.get("/param")
    async def param(result: Annotated[EvalResult, Depends(require_flag("checkout-enabled", default=True))]) -> str:
        return result.reason

    @app.get("/gate")
    @feature_gate("checkout-enabled", default=True, fallback=lambda: "closed")
    def gate() -> str:
        return "open"

    deps = FlagDependencies(context=header_context)

    @app.get("/deps", dependencies=[Depends(deps.require_flag("checkout-enabled", default=True))])
    @deps.feature_gate("checkout-enabled", default=True)
    async def via_deps() -> str:
        return "open"

    client = TestClient(app)
    assert [client.get(path).json() for path in ("/checkout", "/param", "/gate", "/deps")] == [
        "open",
        "not_found",
        "open",
        "open",
    ]
    evaluator.update([{"key": "checkout-enabled", "enabled": False}])  # the flag exists: it answers
    assert [client.get(path).status_code for path in ("/checkout", "/param", "/deps")] == [404, 404, 404]
    assert client.get("/gate").json() == "closed"
    with pytest.raises(TypeError, match="default must be True or False"):
        require_flag("x", default="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="default must be True or False"):
        feature_gate("x", default=1)  # type: ignore[arg-type]


def test_feature_gate_keeps_the_endpoint_metadata() -> None:
    async def listing(page: int = 1) -> dict[str, int]:
        """Lists things."""
        return {"page": page}

    gated = feature_gate("beta")(listing)
    assert gated.__name__ == "listing"
    assert gated.__doc__ == "Lists things."
    assert gated.__wrapped__ is listing  # type: ignore[attr-defined]


# --- context ----------------------------------------------------------------------------------------------


def test_header_context() -> None:
    evaluator = FlagEvaluator(
        [
            only_for("enterprise", "plan", ["enterprise"]),
            only_for("eu", "country", ["DE", "FR"]),
            {
                "key": "staff",
                "enabled": True,
                "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@corp.test"]}]}],
            },
        ]
    )
    app = FastAPI()
    setup(app, evaluator, context=header_context)

    @app.get("/ctx")
    async def ctx(context: ContextDep, flags: FlagsDep) -> dict[str, Any]:
        return {
            "user_id": context.user_id,
            "email": context.email,
            "plan": context.plan,
            "country": context.country,
            "on": sorted(key for key in ("enterprise", "eu", "staff") if flags.is_enabled(key)),
        }

    client = TestClient(app)
    headers = {"x-user-id": "u7", "x-user-email": "kim@corp.test", "x-plan": "enterprise", "cf-ipcountry": "DE"}
    assert client.get("/ctx", headers=headers).json() == {
        "user_id": "u7",
        "email": "kim@corp.test",
        "plan": "enterprise",
        "country": "DE",
        "on": ["enterprise", "eu", "staff"],
    }
    assert client.get("/ctx", headers={"x-user-id": "u8", "cf-ipcountry": "US"}).json()["on"] == []
    assert client.get("/ctx").json()["user_id"] == ""
    mixed_case = client.get("/ctx", headers={"X-User-Id": "U9", "X-Plan": "enterprise"}).json()
    assert (mixed_case["user_id"], mixed_case["plan"], mixed_case["on"]) == ("U9", "enterprise", ["enterprise"])


@pytest.mark.parametrize("kind", ["async", "sync", "no-args"])
def test_custom_context_function_taking_the_request(kind: str) -> None:
    threads: list[str] = []
    if kind == "async":

        async def context(request: Request) -> EvalContext:
            return EvalContext(request.query_params.get("as", ""))
    elif kind == "sync":

        def context(request: Request) -> EvalContext:
            threads.append(threading.current_thread().name)
            return EvalContext(request.query_params.get("as", ""))
    else:

        def context() -> EvalContext:  # type: ignore[misc]
            return EvalContext("alice")

    app = gated_app(beta_for_alice(), context=context)
    client = TestClient(app)
    assert client.get("/beta", params={"as": "alice"}, headers=BOB).status_code == 200
    expected = 200 if kind == "no-args" else 404
    assert client.get("/beta", params={"as": "bob"}, headers=ALICE).status_code == expected
    if kind == "sync":
        assert threads
        assert threading.main_thread().name not in threads


# Module level: with `from __future__ import annotations`, FastAPI resolves a dependency's annotations
# in its module's globals.
USERS = {"token-a": ("alice", "enterprise"), "token-b": ("bob", "free")}


def current_user(authorization: Annotated[str, Header()] = "") -> tuple[str, str]:
    return USERS.get(authorization.removeprefix("Bearer "), ("", ""))


async def user_context(user: Annotated[tuple[str, str], Depends(current_user)]) -> EvalContext:
    return EvalContext(user[0], plan=user[1])


USER_DEPS = FlagDependencies(context=user_context)
HEADER_DEPS = FlagDependencies(context=header_context)
UserFlags = Annotated[Flags, Depends(USER_DEPS.get_flags)]


def test_context_from_other_dependencies_with_flag_dependencies() -> None:
    spy = CountingEvaluator(FlagEvaluator([only_for("beta", "plan", ["enterprise"], "v2")]))
    app = FastAPI()
    setup(app, spy, context=USER_DEPS)  # type: ignore[arg-type]

    @app.get("/beta", dependencies=[Depends(USER_DEPS.require_flag("beta"))])
    async def beta(flags: UserFlags) -> dict[str, Any]:
        return {"user": flags.context.user_id, "variant": flags.variant("beta")}

    @app.get("/gate")
    @USER_DEPS.feature_gate("beta", fallback=lambda flags: "old")
    def gate(flags: UserFlags) -> str:
        return "new"

    assert not app.dependency_overrides  # solved from the route's own graph: no per-request override cost
    client = TestClient(app)
    token_a, token_b = {"authorization": "Bearer token-a"}, {"authorization": "Bearer token-b"}
    assert client.get("/beta", headers={**token_a, "x-plan": "free"}).json() == {"user": "alice", "variant": "v2"}
    assert spy.calls["beta"] == 1  # the gate and the handler share one evaluation
    # Headers a client sends count for nothing: only the user the token names.
    assert client.get("/beta", headers={**token_b, "x-plan": "enterprise", "x-user-id": "alice"}).status_code == 404
    assert client.get("/gate", headers=token_a).json() == "new"
    assert client.get("/gate", headers={**token_b, "x-plan": "enterprise"}).json() == "old"
    openapi = client.get("/openapi.json").json()
    assert [p["name"] for p in openapi["paths"]["/beta"]["get"]["parameters"]] == ["authorization"]


def test_trap_module_level_dependencies_never_use_another_context_than_the_apps() -> None:
    """Trap: with the app's context in FlagDependencies(context=...), `from ferroflag.fastapi import
    require_flag` gated by the x-user-id header: a user the flag was on for got 404, a client sending
    `x-user-id` passed the gate while the handler saw the flag off. Now there is one context per app,
    and a dependency that cannot evaluate for it says so at the first request."""
    app = FastAPI()
    setup(app, FlagEvaluator([only_for("beta", "plan", ["enterprise"])]), context=USER_DEPS)

    @app.get("/module-gate", dependencies=[Depends(require_flag("beta"))])
    async def module_gate() -> str:
        return "on"

    @app.get("/module-flags")
    async def module_flags(flags: FlagsDep) -> bool:
        return flags.is_enabled("beta")

    def login_context(request: Request) -> EvalContext:
        return EvalContext(request.headers.get("x-user-id", ""))

    other = FlagDependencies(context=login_context)

    @app.get("/other-gate", dependencies=[Depends(other.require_flag("beta"))])
    async def other_gate() -> str:
        return "on"

    @app.get("/user-gate", dependencies=[Depends(USER_DEPS.require_flag("beta"))])
    async def user_gate() -> str:
        return "on"

    client = TestClient(app)
    token_a = {"authorization": "Bearer token-a"}  # alice, enterprise: beta is on for her
    assert client.get("/user-gate", headers=token_a).json() == "on"
    for path in ("/module-gate", "/module-flags"):
        with pytest.raises(RuntimeError, match=r"flag_deps\.require_flag"):
            client.get(path, headers={**token_a, "x-user-id": "1"})
    with pytest.raises(RuntimeError, match="not this app's context"):
        client.get("/other-gate", headers={**token_a, "x-user-id": "1"})
    # With the lifespan (uvicorn, `with TestClient(app)`), the same is found at startup, route by route.
    with pytest.raises(RuntimeError, match="these routes cannot evaluate flags") as startup, TestClient(app):
        pass
    listed = str(startup.value)
    assert "GET /module-gate" in listed
    assert "GET /module-flags" in listed
    assert "GET /other-gate" in listed
    assert "/user-gate" not in listed

    # With a context that is a function of the request, the module-level names and FlagDependencies()
    # (no context of its own) use that one context.
    plain = FastAPI()
    setup(plain, beta_for_alice(), context=lambda request: EvalContext(request.cookies.get("login", "")))
    shared = FlagDependencies()

    @plain.get("/beta", dependencies=[Depends(require_flag("beta")), Depends(shared.require_flag("beta"))])
    async def plain_beta(flags: FlagsDep) -> str:
        return flags.context.user_id

    plain_client = TestClient(plain)
    plain_client.cookies.set("login", "alice")
    assert plain_client.get("/beta", headers=BOB).json() == "alice"
    plain_client.cookies.set("login", "bob")
    assert plain_client.get("/beta", headers=ALICE).status_code == 404


def test_trap_no_context_is_no_header_context() -> None:
    """Trap: the default context read x-user-id / x-plan from the request, so `curl -H 'x-plan:
    enterprise'` opened an enterprise-only gate. Without a context, the flag dependencies now raise."""
    app = FastAPI()
    setup(app, FlagEvaluator([only_for("enterprise", "plan", ["enterprise"])]))

    @app.get("/enterprise", dependencies=[Depends(require_flag("enterprise"))])
    async def enterprise() -> str:
        return "secret"

    with pytest.raises(RuntimeError, match="no flag context"):
        TestClient(app).get("/enterprise", headers={"x-plan": "enterprise"})
    with pytest.raises(RuntimeError, match=r"GET /enterprise: .*no flag context"), TestClient(app):
        pass
    # The header context is there, as an explicit choice (behind a proxy that sets the headers).
    trusting = gated_app(FlagEvaluator([only_for("beta", "plan", ["enterprise"])]), context=header_context)
    assert TestClient(trusting).get("/beta", headers={"x-plan": "enterprise"}).status_code == 200


def test_setup_refuses_a_context_function_with_dependencies() -> None:
    with pytest.raises(TypeError, match="FlagDependencies"):
        setup(FastAPI(), beta_for_alice(), context=user_context)
    with pytest.raises(TypeError, match="FlagDependencies"):
        setup(FastAPI(), beta_for_alice(), context=lambda request, extra=1: EvalContext("x"))
    with pytest.raises(TypeError, match="built with a context"):
        setup(FastAPI(), beta_for_alice(), context=FlagDependencies())
    with pytest.raises(TypeError, match="FlagDependencies or a function"):
        setup(FastAPI(), beta_for_alice(), context="x-user-id")  # type: ignore[arg-type]


def test_context_lambda_of_the_request() -> None:
    app = gated_app(beta_for_alice(), context=lambda request: EvalContext(request.headers.get("x-login", "")))
    client = TestClient(app)
    assert client.get("/beta", headers={"x-login": "alice"}).status_code == 200
    assert client.get("/beta", headers=ALICE).status_code == 404


def test_context_function_annotated_with_a_type_checking_import() -> None:
    def context(request: typing_only.Request) -> EvalContext:  # type: ignore[name-defined]  # noqa: F821
        return EvalContext(request.headers.get("x-login", ""))

    client = TestClient(gated_app(beta_for_alice(), context=context))
    assert client.get("/beta", headers={"x-login": "alice"}).status_code == 200


def test_a_context_function_must_return_an_eval_context() -> None:
    app = gated_app(beta_for_alice(), context=lambda: {"user_id": "alice"})
    with pytest.raises(TypeError, match="must return an EvalContext"):
        TestClient(app).get("/beta")


def test_dependency_overrides_still_work() -> None:
    requirement = require_flag("beta")
    app = FastAPI()
    setup(app, beta_for_alice(), context=header_context)

    @app.get("/beta", dependencies=[Depends(requirement)])
    async def beta(flags: FlagsDep) -> str:
        return flags.context.user_id

    client = TestClient(app)
    app.dependency_overrides[get_context] = lambda: EvalContext("alice")
    assert client.get("/beta", headers=BOB).json() == "alice"
    app.dependency_overrides.clear()
    app.dependency_overrides[requirement] = lambda: None  # the gate itself can be lifted
    assert client.get("/beta", headers=BOB).json() == "bob"


# --- per-request cache --------------------------------------------------------------------------------


def test_flags_are_evaluated_once_per_request() -> None:
    spy = CountingEvaluator(
        FlagEvaluator([only_for("beta", "user_id", ["alice"], "v2"), {"key": "b", "enabled": True}])
    )
    app = FastAPI()
    setup(app, spy, context=header_context)  # type: ignore[arg-type]
    seen: list[Flags] = []

    @app.get("/dashboard", dependencies=[Depends(require_flag("beta"))])
    async def dashboard(
        flags: FlagsDep,
        again: FlagsDep,
        result: Annotated[EvalResult, Depends(require_flag("beta"))],
    ) -> dict[str, Any]:
        seen.append(flags)
        assert again is flags
        return {
            "beta": flags.is_enabled("beta"),
            "beta-again": flags.is_enabled("beta"),
            "variant": flags.variant("beta"),
            "b": [flags.evaluate("b").enabled, flags.is_enabled("b")],
            "missing": flags.is_enabled("missing", default=True),
            "result": result.variant,
        }

    @app.get("/gated")
    @feature_gate("beta")
    async def gated(flags: FlagsDep) -> str:
        return flags.variant("beta")

    client = TestClient(app)
    body = client.get("/dashboard", headers=ALICE).json()
    assert body == {
        "beta": True,
        "beta-again": True,
        "variant": "v2",
        "b": [True, True],
        "missing": True,
        "result": "v2",
    }
    assert spy.calls == {"beta": 1, "b": 1, "missing": 1}
    assert sorted(seen[0].evaluated()) == ["b", "beta", "missing"]
    client.get("/dashboard", headers=ALICE)
    assert spy.calls == {"beta": 2, "b": 2, "missing": 2}  # a new request evaluates afresh
    assert seen[0] is not seen[1]
    assert client.get("/gated", headers=ALICE).json() == "v2"
    assert spy.calls["beta"] == 3  # the gate and the handler share one evaluation


# --- app state, test bindings, two apps ---------------------------------------------------------------


def test_setup_stores_state_on_the_app_and_refuses_twice() -> None:
    evaluator = beta_for_alice()
    app = FastAPI()
    state = setup(app, evaluator, context=header_context)
    assert app.state.ferroflag is state
    assert FerroflagFastAPI.of(app) is state
    assert state.evaluator is evaluator
    assert state.sync is None
    with pytest.raises(RuntimeError, match="already set up"):
        setup(app, evaluator, context=header_context)
    with pytest.raises(TypeError):
        setup(FastAPI(), object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        setup(FastAPI(), evaluator, sync=object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not set up"):
        FerroflagFastAPI.of(FastAPI())
    assert ferroflag.fastapi.SyncSource is FlagSource  # the old name, for code that imports it


class ListSource:
    """A Python flag source (a database, say): the five methods of `ferroflag.sources.FlagSource`."""

    def __init__(self, evaluator: FlagEvaluator, flags: list[dict[str, Any]]) -> None:
        self.evaluator, self.flags, self.running = evaluator, flags, False

    def start(self, wait: float = 5.0) -> bool:
        self.evaluator.update(self.flags)
        self.running = True
        return True

    async def start_async(self, wait: float = 5.0) -> bool:
        return self.start(wait)

    def wait_ready(self, timeout: float) -> bool:
        return self.running

    def stop(self) -> bool:
        self.running = False
        return True

    def status(self) -> Any:
        return {"ready": self.running}


def test_setup_takes_any_flag_source() -> None:
    evaluator = FlagEvaluator()
    source = ListSource(evaluator, [{"key": "beta", "enabled": True}])
    app = gated_app(evaluator, sync=source)
    with TestClient(app) as client:
        assert source.running
        assert client.get("/beta").status_code == 200
    assert not source.running


def test_an_app_without_setup_fails_loudly() -> None:
    app = FastAPI()

    @app.get("/beta", dependencies=[Depends(require_flag("beta"))])
    async def beta() -> str:
        return "on"

    with pytest.raises(RuntimeError, match="not set up"):
        TestClient(app).get("/beta", headers=ALICE)


def test_test_data_bind_wins_over_the_app_evaluator() -> None:
    app = gated_app(FlagEvaluator([{"key": "beta", "enabled": False}]))
    client = TestClient(app)
    assert client.get("/beta", headers=BOB).status_code == 404
    with TestData() as td:
        td.flag("beta").on_for(user_ids=["bob"])
        td.bind(app)
        assert client.get("/beta", headers=BOB).status_code == 200
        assert client.get("/beta", headers=ALICE).status_code == 404
    assert client.get("/beta", headers=BOB).status_code == 404  # restore() unbinds


def test_bind_without_setup_and_with_the_pytest_fixture(ferroflag: TestData) -> None:
    router = APIRouter()

    @router.get("/beta", dependencies=[Depends(require_flag("beta"))])
    async def beta() -> str:
        return "on"

    bare = FastAPI()  # no setup(): a bound evaluator does not say who the request is for
    bare.include_router(router)
    ferroflag.flag("beta").on()
    ferroflag.bind(bare)
    with pytest.raises(RuntimeError, match="not set up"):
        TestClient(bare).get("/beta")
    app = FastAPI()
    setup(app, ferroflag.evaluator, context=lambda: EvalContext("test-user"))
    app.include_router(router)
    assert TestClient(app).get("/beta").json() == "on"


def test_bound_evaluator_survives_the_lifespan(flag_service: tuple[FlagService, Path]) -> None:
    service, _ = flag_service
    evaluator = FlagEvaluator()
    app = gated_app(evaluator, sync=FlagSyncClient(evaluator, service.url, interval=0.1))
    unbind = bind(app, FlagEvaluator([{"key": "beta", "enabled": True}]))
    try:
        with TestClient(app) as client:
            assert client.get("/beta", headers=BOB).status_code == 200  # the test's, not the synced one
    finally:
        unbind()


def test_two_apps_with_two_evaluators_do_not_interfere() -> None:
    requirement = require_flag("beta")  # one dependency object shared by both apps
    router = APIRouter()

    @router.get("/beta", dependencies=[Depends(requirement)])
    async def beta(flags: FlagsDep) -> str:
        return flags.variant("beta")

    apps = []
    for variant, user in (("one", "alice"), ("two", "bob")):
        app = FastAPI()
        setup(app, FlagEvaluator([only_for("beta", "user_id", [user], variant)]), context=header_context)
        app.include_router(router)
        apps.append(app)
    one, two = TestClient(apps[0]), TestClient(apps[1])
    assert one.get("/beta", headers=ALICE).json() == "one"
    assert one.get("/beta", headers=BOB).status_code == 404
    assert two.get("/beta", headers=BOB).json() == "two"
    assert two.get("/beta", headers=ALICE).status_code == 404
    with TestData() as td:
        td.flag("beta").off()
        td.bind(apps[0])
        assert one.get("/beta", headers=ALICE).status_code == 404
        assert two.get("/beta", headers=BOB).json() == "two"  # the binding is per app


def test_two_apps_with_their_own_sync_sources_run_side_by_side(
    flag_service: tuple[FlagService, Path], tmp_path: Path
) -> None:
    service, _ = flag_service  # beta: alice only
    path = tmp_path / "other.json"
    write_flags(path, [only_for("beta", "user_id", ["bob"], variant="file")])
    network_evaluator, file_evaluator = FlagEvaluator(), FlagEvaluator()
    network = FlagSyncClient(network_evaluator, service.url, interval=0.1)
    watcher = FlagFileWatcher(file_evaluator, path, interval=0.1)
    one = gated_app(network_evaluator, sync=network)
    two = gated_app(file_evaluator, sync=watcher)
    with TestClient(one) as client_one:
        with TestClient(two) as client_two:
            assert network.status().running
            assert watcher.status().running
            assert client_one.get("/beta", headers=ALICE).status_code == 200
            assert client_one.get("/beta", headers=BOB).status_code == 404
            assert client_two.get("/beta", headers=BOB).status_code == 200
            assert client_two.get("/beta", headers=ALICE).status_code == 404
        assert not watcher.status().running  # the second app's shutdown stopped its own source only
        assert network.status().running
        assert client_one.get("/beta", headers=ALICE).status_code == 200
    assert not network.status().running


# --- OpenAPI ------------------------------------------------------------------------------------------


def test_openapi_schema_is_still_generated() -> None:
    app = gated_app(beta_for_alice())

    @app.get("/items/{item_id}")
    @feature_gate("beta")
    async def item(item_id: int, q: str, flags: FlagsDep) -> dict[str, Any]:
        return {"item_id": item_id}

    @app.get("/param")
    async def param(result: Annotated[EvalResult, Depends(require_flag("beta"))], limit: int = 10) -> int:
        return limit

    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/beta", "/open", "/items/{item_id}", "/param"} <= set(paths)
    item_params = {p["name"]: p["in"] for p in paths["/items/{item_id}"]["get"]["parameters"]}
    assert item_params == {"item_id": "path", "q": "query"}  # nothing of ferroflag's leaks in
    assert {p["name"] for p in paths["/param"]["get"]["parameters"]} == {"limit"}
    assert "parameters" not in paths["/beta"]["get"]


# --- lifespan and sync ----------------------------------------------------------------------------------


def test_lifespan_starts_and_stops_the_sync_thread(flag_service: tuple[FlagService, Path]) -> None:
    service, _ = flag_service
    before = settled_sync_threads()
    evaluator = FlagEvaluator()
    client = FlagSyncClient(evaluator, service.url, interval=0.1)
    app = gated_app(evaluator, sync=client, sync_wait=5.0)
    assert not client.status().running  # nothing starts before the lifespan
    with TestClient(app) as test_client:
        assert client.status().running
        assert client.status().ready
        assert sync_threads() == before + 1
        assert test_client.get("/beta", headers=ALICE).status_code == 200
        assert test_client.get("/beta", headers=BOB).status_code == 404
    assert not client.status().running
    assert wait_for(lambda: sync_threads() == before, timeout=5), "a ferroflag-sync thread outlived the app"


def test_lifespan_composes_with_the_app_lifespan(flag_service: tuple[FlagService, Path]) -> None:
    service, _ = flag_service
    evaluator = FlagEvaluator()
    client = FlagSyncClient(evaluator, service.url, interval=0.1)
    events: list[tuple[str, bool]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append(("startup: flags loaded", "beta" in evaluator))
        yield {"greeting": "hello"}
        events.append(("shutdown: sync running", client.status().running))

    app = FastAPI(lifespan=lifespan)
    setup(app, evaluator, context=header_context, sync=client)

    @app.get("/greeting")
    async def greeting(request: Request) -> str:
        return str(request.state.greeting)

    with TestClient(app) as test_client:
        assert test_client.get("/greeting").json() == "hello"  # the app lifespan's state gets through
    assert events == [("startup: flags loaded", True), ("shutdown: sync running", True)]
    assert not client.status().running


def test_sync_lifespan_on_its_own_with_an_async_generator(flag_service: tuple[FlagService, Path]) -> None:
    service, _ = flag_service
    evaluator = FlagEvaluator()
    client = FlagSyncClient(evaluator, service.url, interval=0.1)
    order: list[str] = []

    async def inner(app: FastAPI) -> AsyncIterator[None]:
        order.append("inner up")
        yield
        order.append("inner down")

    app = FastAPI(lifespan=sync_lifespan(client, inner, wait=5.0))
    setup(app, evaluator, context=header_context)
    with TestClient(app):
        assert client.status().running
        assert order == ["inner up"]
    assert order == ["inner up", "inner down"]
    assert not client.status().running


def test_lifespan_starts_the_app_when_the_flag_service_is_down(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = settled_sync_threads()
    evaluator = FlagEvaluator()
    client = FlagSyncClient(evaluator, f"http://127.0.0.1:{port}", interval=0.1, connect_timeout=0.5)
    app = gated_app(evaluator, sync=client, sync_wait=0.3)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ferroflag.fastapi"), TestClient(app) as test_client:
        assert time.monotonic() - started < 5
        assert test_client.get("/beta", headers=ALICE).status_code == 404  # no flags yet: off
        assert test_client.get("/open").status_code == 200
    assert any("no flags loaded" in record.getMessage() for record in caplog.records)
    assert wait_for(lambda: sync_threads() == before, timeout=5)


def test_a_flag_flipped_on_the_service_is_seen_by_the_next_request(flag_service: tuple[FlagService, Path]) -> None:
    service, path = flag_service
    before = settled_sync_threads()
    evaluator = FlagEvaluator()
    app = gated_app(evaluator, sync=FlagSyncClient(evaluator, service.url, interval=0.1))
    with running(app) as url, httpx.Client(base_url=url, timeout=5) as http:
        assert sync_threads() == before + 1
        assert http.get("/beta", headers=ALICE).status_code == 200
        assert http.get("/beta", headers=BOB).status_code == 404
        write_flags(path, [only_for("beta", "user_id", ["bob"], variant="v3")])
        assert wait_for(lambda: http.get("/beta", headers=BOB).status_code == 200, timeout=10, interval=0.05)
        assert http.get("/beta", headers=ALICE).status_code == 404
    assert wait_for(lambda: sync_threads() == before, timeout=5), "a ferroflag-sync thread outlived the server"


def test_real_server_gates_sync_and_async_endpoints() -> None:
    app = gated_app(beta_for_alice())

    @app.get("/sync-gate")
    @feature_gate("beta", fallback=lambda flags: "fallback")
    def sync_gate(flags: FlagsDep) -> str:
        return f"new:{threading.current_thread() is not threading.main_thread()}"

    @app.get("/ctx", dependencies=[Depends(require_flag("beta"))])
    def ctx(context: ContextDep) -> dict[str, str]:
        return {"user": context.user_id, "plan": context.plan}

    with running(app) as url, httpx.Client(base_url=url, timeout=5) as http:
        assert http.get("/beta", headers=ALICE).json() == {"beta": True}
        assert http.get("/beta", headers=BOB).json() == {"detail": "Feature not available"}
        assert http.get("/sync-gate", headers=ALICE).json() == "new:True"
        assert http.get("/sync-gate", headers=BOB).json() == "fallback"
        assert http.get("/ctx", headers={**ALICE, "x-plan": "team"}).json() == {"user": "alice", "plan": "team"}
        assert http.get("/openapi.json").status_code == 200


# --- the example app ---------------------------------------------------------------------------------------


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("FERROFLAG_URL", "FERROFLAG_FILE", "FERROFLAG_PATH", "FERROFLAG_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    spec = importlib.util.spec_from_file_location("ferroflag_example_fastapi_app", REPO / "examples" / "fastapi_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def login(user: str) -> dict[str, str]:
    """The example app's login: the bearer token examples/users.json gives `user`."""
    return {"authorization": f"Bearer {user}-token"}


def test_example_app_from_a_file(example: Any, tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_bytes((REPO / "examples" / "flags.json").read_bytes())
    before = settled_sync_threads()
    evaluator = FlagEvaluator()
    app = example.create_app(evaluator, example.sync_from_env(evaluator, {"FERROFLAG_FILE": str(path)}))
    with TestClient(app) as client:
        assert client.get("/checkout", headers=login("bob")).json() == {"checkout": "new", "variant": "v2"}
        assert client.get("/theme", headers=login("alice")).json()["theme"] in ("midnight", "slate")
        dashboard = client.get("/dashboard", headers=login("bob")).json()
        assert set(dashboard) == {"new-checkout", "dark-mode", "eu-pricing"}
        assert dashboard["eu-pricing"] == {"enabled": True, "variant": "eur", "reason": "rule_match"}
        assert client.get("/pricing", headers=login("alice")).json() == {"detail": "EU pricing only"}
        health = client.get("/healthz").json()
        assert health["flags"] == 5
        assert health["sync"]["source"] == "file"
    assert sync_threads() == before


def test_trap_the_example_app_trusts_no_client_header(example: Any) -> None:
    """Trap: `curl -H 'x-plan: enterprise'` opened the example's enterprise-only checkout (its context
    came from request headers). The example now evaluates for the logged-in user's own record."""
    evaluator = FlagEvaluator([only_for("new-checkout", "plan", ["enterprise"], "v2")])
    client = TestClient(example.create_app(evaluator, FlagFileWatcher(evaluator, REPO / "examples" / "flags.json")))
    forged = {"x-plan": "enterprise", "x-user-id": "bob", "cf-ipcountry": "DE"}
    assert client.get("/checkout", headers=forged).status_code == 404  # signed out: anonymous
    assert client.get("/checkout", headers={**login("erin"), **forged}).status_code == 404  # erin is on free
    assert client.get("/checkout", headers=login("bob")).json() == {"checkout": "new", "variant": "v2"}
    assert client.get("/pricing", headers={**login("alice"), "cf-ipcountry": "DE"}).status_code == 404


def test_example_app_from_the_flag_service(example: Any, flag_service: tuple[FlagService, Path]) -> None:
    service, path = flag_service
    evaluator = FlagEvaluator()
    sync = example.sync_from_env(evaluator, {"FERROFLAG_URL": service.url, "FERROFLAG_INTERVAL": "0.1"})
    assert isinstance(sync, FlagSyncClient)
    app = example.create_app(evaluator, sync)
    with running(app) as url, httpx.Client(base_url=url, timeout=5) as http:
        assert http.get("/dashboard", headers=login("alice")).json()["new-checkout"]["reason"] == "not_found"
        write_flags(path, [{"key": "new-checkout", "enabled": True, "default_variant": "v9"}])
        assert wait_for(
            lambda: http.get("/checkout", headers=login("alice")).status_code == 200, timeout=10, interval=0.05
        )
        assert http.get("/checkout", headers=login("bob")).json() == {"checkout": "new", "variant": "v9"}
        assert http.get("/healthz").json()["sync"]["source"] == "network"


def test_example_module_app_defaults_to_the_bundled_flags(example: Any) -> None:
    state = FerroflagFastAPI.of(example.app)
    assert state.sync is not None
    assert Path(state.sync.path) == REPO / "examples" / "flags.json"  # type: ignore[attr-defined]


def test_the_readme_quick_start_runs(ferroflag: TestData) -> None:
    """The README's FastAPI app, as a new user would write it from the README alone: it gates on the
    logged-in user (a session cookie), and no request header changes who the flags are for."""
    text = (REPO / "README.md").read_text().split("## FastAPI\n", 1)[1]
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "ferroflag_readme_quick_start"}
    exec(compile(code, "README.md (FastAPI)", "exec"), namespace)
    app = namespace["app"]
    ferroflag.set({"dark-mode": "slate"})
    ferroflag.flag("new-checkout").only_for(plan="team")
    ferroflag.bind(app)
    client = TestClient(app)  # no lifespan: the flag service in the snippet is never contacted
    forged = {"x-user-id": "u1", "x-plan": "team", "x-user-email": "ann@example.com"}
    assert client.get("/checkout", headers=forged).status_code == 404  # signed out
    client.cookies.set("session", "s3cr3t")  # ann, on the team plan
    assert client.get("/checkout").json() == {"theme": "slate"}
    ferroflag.set({"new-checkout": False})
    assert client.get("/checkout").status_code == 404


def readme_python_block(after: str) -> str:
    """The first ```python block of README.md after the line `after` (dedented: it may sit in a list)."""
    text = (REPO / "README.md").read_text().split(after, 1)[1]
    return textwrap.dedent(text.split("```python\n", 1)[1].split("```", 1)[0])


def test_the_readme_app_and_its_tests_pass_under_a_running_lifespan(
    pytester: pytest.Pytester, flag_service: tuple[FlagService, Path]
) -> None:
    """Done when: an app written from the README alone, tested as the README shows, with its lifespan
    syncing from a real flag service, gets the tests' overrides and not the service's flags."""
    service, path = flag_service
    write_flags(path, [{"key": "new-checkout", "enabled": True}, {"key": "dark-mode", "enabled": True}])
    app_code = readme_python_block("## FastAPI\n").replace("http://flags.internal:8080", service.url)
    assert service.url in app_code
    tests = readme_python_block("**Pointing your app at the test flags.**")
    assert "from myapp import app" in tests
    pytester.makepyfile(myapp=app_code, test_readme_fastapi=tests)
    result = pytester.runpytest("-p", "ferroflag.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


# --- values ------------------------------------------------------------------------------------------


def test_per_request_flags_serve_values_and_the_callers_default() -> None:
    evaluator = FlagEvaluator(
        [
            {
                "key": "export-limit",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["team"]}], "variant": "big"}
                ],
                "off_variant": "small",
                "values": {"big": 5000, "small": 100},
            },
            {"key": "checkout", "enabled": True, "default_variant": "v2", "values": {"v2": {"max_items": 50}}},
            {"key": "zero", "enabled": True, "default_variant": "z", "values": {"z": 0}},
        ]
    )
    app = FastAPI()
    setup(app, evaluator, context=lambda request: EvalContext("u", plan=request.headers.get("x-test-plan", "")))

    @app.get("/limits")
    def limits(flags: FlagsDep) -> dict[str, Any]:
        config = flags.value("checkout", {})
        config["max_items"] = -1  # the caller's own copy: the next request still sees 50
        return {
            "limit": flags.value("export-limit", 10),
            "zero": flags.value("zero", 7),
            "missing": flags.value("no-such-flag", "fallback"),
            "evaluated": sorted(flags.evaluated()),
        }

    @app.get("/config")
    def config(flags: FlagsDep) -> Any:
        return flags.value("checkout")

    client = TestClient(app)
    assert client.get("/limits", headers={"x-test-plan": "team"}).json() == {
        "limit": 5000,
        "zero": 0,
        "missing": "fallback",
        "evaluated": ["checkout", "export-limit", "no-such-flag", "zero"],
    }
    # Off (no_match) carries the off variant's value, not the caller's default.
    assert client.get("/limits").json()["limit"] == 100
    assert client.get("/config").json() == {"max_items": 50}


# --- what a browser may see ---------------------------------------------------------------------------------


def test_trap_client_bootstrap_has_only_client_flags_and_records_them() -> None:
    """Trap: a bootstrap payload had to call `evaluator.evaluate_all(flags.context)`, which exposes every
    flag name and skips the request's `evaluated()` record. `client_flags()` / `ClientFlagsDep` give the
    flags whose metadata says `"client": true`, through the request's Flags."""
    evaluator = FlagEvaluator(
        [
            {"key": "dark-mode", "enabled": True, "default_variant": "midnight", "metadata": {"client": True}},
            {
                "key": "limits",
                "enabled": True,
                "rules": [
                    {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["team"]}], "variant": "big"}
                ],
                "off_variant": "small",
                "values": {"big": {"rows": 5000}, "small": {"rows": 100}},
                "metadata": {"client": True, "owner": "growth"},
            },
            {"key": "internal-fraud-rules", "enabled": True, "metadata": {"owner": "risk"}},
            {"key": "client-as-text", "enabled": True, "metadata": {"client": "true"}},  # only the JSON true counts
        ]
    )
    app = gated_app(evaluator)
    seen: list[list[str]] = []

    @app.get("/bootstrap")
    async def bootstrap(payload: ClientFlagsDep, flags: FlagsDep) -> dict[str, Any]:
        seen.append(sorted(flags.evaluated()))
        return payload

    @app.get("/page")
    async def page(flags: FlagsDep) -> dict[str, Any]:
        return {"flags": client_flags(flags), "evaluated": sorted(flags.evaluated())}

    @app.get("/deps")
    async def via_deps(payload: Annotated[dict[str, Any], Depends(HEADER_DEPS.get_client_flags)]) -> dict[str, Any]:
        return payload

    client = TestClient(app)
    team = {"x-user-id": "u1", "x-plan": "team"}
    expected = {
        "dark-mode": {"enabled": True, "variant": "midnight", "value": None},
        "limits": {"enabled": True, "variant": "big", "value": {"rows": 5000}},
    }
    assert client.get("/bootstrap", headers=team).json() == expected
    assert seen == [["dark-mode", "limits"]]  # recorded for the request, and nothing else evaluated
    assert client.get("/page", headers=team).json() == {"flags": expected, "evaluated": ["dark-mode", "limits"]}
    assert client.get("/deps", headers=team).json() == expected
    free = client.get("/bootstrap", headers={"x-user-id": "u2"}).json()
    assert free["limits"] == {"enabled": False, "variant": "small", "value": {"rows": 100}}
    # A new snapshot changes the set (the keys are cached per evaluator version).
    evaluator.update([{"key": "internal-fraud-rules", "enabled": True, "metadata": {"client": True}}])
    assert client.get("/bootstrap").json() == {"internal-fraud-rules": {"enabled": True, "variant": "", "value": None}}
    with pytest.raises(TypeError, match="Flags"):
        client_flags(evaluator)  # type: ignore[arg-type]


# --- tests of an app with a running lifespan ------------------------------------------------------------------


def test_trap_test_overrides_win_over_the_lifespans_file_watcher(tmp_path: Path) -> None:
    """Trap: with `with TestClient(app)` running the app's lifespan, its sync source overwrote the test's
    overrides. Now the overrides win until the test ends, whether the test data is bound to the app or
    laid over the app's own evaluator, and the app keeps the source's flags afterwards."""
    path = tmp_path / "flags.json"
    write_flags(path, [{"key": "beta", "enabled": False}, {"key": "other", "enabled": False}])
    evaluator = FlagEvaluator()
    watcher = FlagFileWatcher(evaluator, path, interval=0.05)
    app = gated_app(evaluator, sync=watcher)

    @app.get("/other")
    async def other(flags: FlagsDep) -> bool:
        return flags.is_enabled("other")

    openfeature = pytest.importorskip("ferroflag.openfeature")
    provider = openfeature.FerroflagProvider(evaluator)  # what the app registered with the OpenFeature API

    def provider_says_beta_for_bob() -> bool:
        return provider.current_evaluator.is_enabled("beta", EvalContext("bob"))

    for flow in ("bound", "layered"):
        td = TestData() if flow == "bound" else TestData(evaluator)
        try:
            if flow == "bound":
                td.bind(app)
            with TestClient(app) as client:
                td.flag("beta").only_for(user_ids=["bob"])
                assert client.get("/beta", headers=BOB).status_code == 200
                assert provider_says_beta_for_bob()
                # The file changes while the test runs: the watcher writes the app's evaluator.
                write_flags(path, [{"key": "beta", "enabled": False}, {"key": "other", "enabled": True}])
                assert wait_for(lambda: evaluator.is_enabled("other", EvalContext("x")))
                for _ in range(5):  # and keeps polling
                    assert client.get("/beta", headers=BOB).status_code == 200
                    assert client.get("/beta", headers=ALICE).status_code == 404
                    assert provider_says_beta_for_bob()
                    time.sleep(0.06)
                if flow == "layered":  # the source's other flags come through the test's view
                    assert client.get("/other").json() is True
                write_flags(path, [{"key": "beta", "enabled": False}, {"key": "other", "enabled": False}])
                assert wait_for(lambda: not evaluator.is_enabled("other", EvalContext("x")))
        finally:
            td.restore()
        # The test is over: the app answers from what its source loaded.
        assert TestClient(app).get("/beta", headers=BOB).status_code == 404
        assert not provider_says_beta_for_bob()
        assert not watcher.status().running
