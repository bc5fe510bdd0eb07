"""Telling a decorator written above a route decorator from one written below it.

`@app.get(...)` registers the function it is given and returns it unchanged, so a gate decorator written
above it wraps a function whose route already serves it ungated: nothing fails, the gate just does not
exist. This module lets such a decorator notice it while the decorators are applied (at import).
"""

from __future__ import annotations

import linecache
from types import FrameType

from starlette.routing import Router

__all__ = ["registered_as_route"]


def _decorating_its_definition(endpoint: object, frame: FrameType) -> bool:
    """Whether `frame` is applying a decorator stack written on `endpoint`'s own definition (its line is one
    of the decorator lines), not calling `decorator(endpoint)` on a function defined elsewhere (which may
    rightly be registered ungated on one path and gated on another)."""
    code = getattr(endpoint, "__code__", None)
    if code is None or frame.f_code.co_filename != code.co_filename:
        return False
    first, line = code.co_firstlineno, frame.f_lineno  # co_firstlineno: the first decorator's line
    if line < first:
        return False
    for number in range(first, line + 1):
        text = linecache.getline(code.co_filename, number).lstrip()
        if not text:
            return False  # no source to read: not sure, so no
        if text.startswith(("def ", "async def ")):
            return number == line  # the decorators end at the def line
    return True


def registered_as_route(endpoint: object, frame: FrameType) -> bool:
    """Whether a decorator applied in `frame` sits above a route decorator: the decorator stack of
    `endpoint`'s definition is being applied, and `endpoint` is already the endpoint of a route of a
    router or app that the decorating code can see (a name in its locals or globals)."""
    if not _decorating_its_definition(endpoint, frame):
        return False
    for namespace in (frame.f_locals, frame.f_globals):
        for value in list(namespace.values()):
            router = value if isinstance(value, Router) else getattr(value, "router", None)
            if isinstance(router, Router) and any(
                getattr(route, "endpoint", None) is endpoint for route in router.routes
            ):
                return True
    return False
