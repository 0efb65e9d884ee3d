"""Middleware (``MCPServer(middleware=[...])``): advertise only what exists;
answer a listing without garbage collection in the middle.

The SDK serves ``prompts/list`` and ``prompts/get`` on every server and
advertises the ``prompts`` capability for them; Claude Code then records the
server as having prompts, and ``prompts/get`` of an unknown name answers error
code 0 with a traceback in the log. This server has no prompts, so
:func:`without_prompts` withdraws the capability from the ``initialize`` (and
``server/discover``) result and answers ``prompts/*`` with ``-32601`` (method
not found), exactly what the SDK answers for a method it does not serve.

:func:`listing_uncollected` pauses the cyclic garbage collector while a
``list_sessions`` call is answered, reply serialisation included
(:mod:`..domain.gcpause`).

Public API only: the SDK's ``ServerMiddleware`` contract ``(ctx, call_next)``
runs before lookup and validation, sees ``ctx.method``, may raise ``MCPError``
and may return an adjusted result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import METHOD_NOT_FOUND

from ..domain.gcpause import collection_paused

PROMPT_METHODS = frozenset({"prompts/list", "prompts/get"})
CAPABILITY_METHODS = frozenset({"initialize", "server/discover"})
"""The results that carry the server's ``capabilities``."""


async def without_prompts(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Refuse ``prompts/*`` with ``-32601`` and leave ``prompts`` out of the capabilities.

    Raises:
        MCPError: ``METHOD_NOT_FOUND`` for ``prompts/list`` and ``prompts/get``.
    """
    if ctx.method in PROMPT_METHODS:
        raise MCPError(code=METHOD_NOT_FOUND, message="Method not found", data=ctx.method)
    result = await call_next(ctx)
    if ctx.method in CAPABILITY_METHODS and isinstance(result, Mapping):
        capabilities = result.get("capabilities")
        if isinstance(capabilities, Mapping) and "prompts" in capabilities:
            kept = {k: v for k, v in capabilities.items() if k != "prompts"}
            return {**result, "capabilities": kept}
    return result


LISTING_TOOLS = frozenset({"list_sessions"})
"""The tools whose answer grows with the number of sessions."""


async def listing_uncollected(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Answer a ``tools/call`` of :data:`LISTING_TOOLS` with the cyclic garbage
    collector paused, from the store read to the serialised reply.

    A listing's objects (records, views, the reply's dicts) all live until the
    reply is serialised and are then freed by reference counting; collections
    in between would walk them, and every object of the process, several times
    (:mod:`..domain.gcpause`: about 1.7 times the cost of the listing). Other
    requests are passed on untouched (a ``wait_for_plan`` may last minutes).
    """
    params = ctx.params
    if ctx.method != "tools/call" or params is None or params.get("name") not in LISTING_TOOLS:
        return await call_next(ctx)
    with collection_paused():
        return await call_next(ctx)


__all__ = ["LISTING_TOOLS", "PROMPT_METHODS", "listing_uncollected", "without_prompts"]
