"""The example FastAPI app (`examples/fastapi_app.py`) with each response naming the worker process
that served it (`x-worker-pid`), for `tests/test_gunicorn.py`. Not a test module.

    gunicorn --preload -w 2 -k uvicorn.workers.UvicornWorker gunicorn_app:app   # from tests/
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from examples.fastapi_app import app

__all__ = ["app"]


@app.middleware("http")
async def worker_pid(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["x-worker-pid"] = str(os.getpid())
    return response
