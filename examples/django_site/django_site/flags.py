"""The example's context builder (`FERROFLAG["CONTEXT"]`).

It starts from the default (the signed-in user's id, email, staff and group attributes, or an anonymous
visitor's cookie id) and, for the demo only, lets the
query string play someone else: `/?user=bob&plan=enterprise&country=DE&beta=true&app_version=2.4.1`.
A real site would read plan and country from its own models, never from the request.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ferroflag import EvalContext
from ferroflag.django.middleware import user_context

PROPERTIES = ("beta", "app_version")


def context(request: HttpRequest, user: Any) -> EvalContext:
    base = user_context(request, user)
    query = request.GET
    return EvalContext(
        query.get("user", base.user_id),
        email=query.get("email", base.email),
        plan=query.get("plan", base.plan),
        country=query.get("country", base.country),
        # The default's is_authenticated, is_staff, is_superuser (and groups), with the demo's on top.
        properties={**base.properties, **{name: query[name] for name in PROPERTIES if name in query}},
    )
