"""Template tags: `{% load ferroflag %}`.

    {% flag "new-checkout" %}<a href="/checkout/v2">Try the new checkout</a>{% else %}…{% endflag %}
    {% flag "kill-switch" default=True %}…{% endflag %}     (default: the answer for an unknown flag)
    {% flag_variant "new-checkout" as checkout %}{% if checkout == "v2" %}…{% endif %}
    <body class="theme-{% flag_variant 'dark-mode' %}">
    {% flag_value "export-limit" 100 as limit %}Export up to {{ limit }} rows
    {% flag_value "checkout-config" as config %}{{ config.max_items }}

Both read `request.flags` from the template context (enable
`django.template.context_processors.request`), so a template agrees with its view. Without a request
in the context they evaluate for an anonymous context (`user_id=""`). An `async def` view that calls
`render()` itself loads the flags first (`await request.flags.aload()`): rendering runs on the loop.
"""

from __future__ import annotations

from django import template
from django.template.base import FilterExpression, NodeList, Parser, Token
from django.template.context import Context

from ferroflag import EvalContext
from ferroflag.django.middleware import RequestFlags, flags_for

__all__ = ["FlagNode", "do_flag", "flag_value", "flag_variant", "register"]

register = template.Library()


def _flags(context: Context) -> RequestFlags:
    request = context.get("request")
    if request is not None:
        return flags_for(request)
    return RequestFlags(EvalContext(""))


class FlagNode(template.Node):
    """`{% flag key %}…{% else %}…{% endflag %}`."""

    child_nodelists = ("nodelist_on", "nodelist_off")

    def __init__(
        self,
        key: FilterExpression,
        nodelist_on: NodeList,
        nodelist_off: NodeList,
        default: FilterExpression | None = None,
    ) -> None:
        self.key = key
        self.nodelist_on = nodelist_on
        self.nodelist_off = nodelist_off
        self.default = default

    def render(self, context: Context) -> str:
        key = self.key.resolve(context)
        if not isinstance(key, str) or not key:
            raise template.TemplateSyntaxError(f"{{% flag %}} needs a flag key, got {key!r}")
        default = False if self.default is None else self.default.resolve(context)
        if not isinstance(default, bool):
            raise template.TemplateSyntaxError(f"{{% flag %}} default must be True or False, got {default!r}")
        nodelist = self.nodelist_on if _flags(context).is_enabled(key, default) else self.nodelist_off
        return nodelist.render(context)

    def __repr__(self) -> str:
        return f"<FlagNode {self.key.token}>"


@register.tag("flag")
def do_flag(parser: Parser, token: Token) -> FlagNode:
    """`{% flag "key" %}` renders its body when the flag is on, the `{% else %}` part otherwise.
    The key may be a variable; `default=True` is the answer when no flag has that key."""
    bits = token.split_contents()
    default = None
    if len(bits) == 3 and bits[2].startswith("default="):
        default = parser.compile_filter(bits[2][len("default=") :])
    elif len(bits) != 2:
        raise template.TemplateSyntaxError(
            f"{bits[0]!r} takes the flag key and optionally default=True: {{% flag 'key' default=True %}}"
        )
    key = parser.compile_filter(bits[1])
    nodelist_on = parser.parse(("else", "endflag"))
    nodelist_off = NodeList()
    if parser.next_token().contents == "else":
        nodelist_off = parser.parse(("endflag",))
        parser.delete_first_token()
    return FlagNode(key, nodelist_on, nodelist_off, default)


@register.simple_tag(takes_context=True)
def flag_variant(context: Context, key: str) -> str:
    """`{% flag_variant "key" %}` prints the variant (`""` when off); `… as name` stores it instead."""
    return _flags(context).variant(key)


@register.simple_tag(takes_context=True)
def flag_value(context: Context, key: str, default: object = None) -> object:
    """`{% flag_value "key" default %}` prints the flag's value for this request (docs/spec.md §2.2),
    `default` when it has none; `… as name` stores it (a dict or list stays one)."""
    return _flags(context).value(key, default)
