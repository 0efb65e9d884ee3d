"""Where this server is stricter than the SDK's defaults (MCP layer only).

* Unknown tool arguments are refused, not dropped: a misspelt
  ``fencing_tokne`` must not release without the token check.
* A line on stdin that is not JSON-RPC gets a JSON-RPC error instead of
  silence, so a client never waits forever; serving goes on.

Both reach into SDK internals (``_tool_manager``, ``_lowlevel_server``) of the
pinned ``mcp>=2.3,<3``; the tests in ``tests/test_fault_input.py`` fail if an
SDK release moves them.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ConfigDict, ValidationError

log = logging.getLogger(__name__)


def forbid_extra_arguments(app: MCPServer[Any]) -> None:
    """Refuse unknown tool arguments instead of dropping them.

    The SDK validates arguments with a model that ignores unknown keys, so a
    misspelt ``fencing_tokne`` would release without the token check. Each
    tool's argument model becomes a subclass with ``extra="forbid"`` (the error
    names the argument: "Extra inputs are not permitted") and its input schema
    says ``additionalProperties: false``. Fault suite: bad input, fuzzed.
    """
    manager = getattr(app, "_tool_manager", None)
    if manager is None:  # pragma: no cover - SDK internals moved; keep serving
        log.warning("cannot make tools refuse unknown arguments with this SDK version")
        return
    for tool in manager.list_tools():
        base = tool.fn_metadata.arg_model
        strict = type(
            base.__name__,
            (base,),
            {"model_config": ConfigDict(**{**base.model_config, "extra": "forbid"})},
        )
        tool.fn_metadata.arg_model = strict
        tool.parameters = {**tool.parameters, "additionalProperties": False}


async def serve_stdio(app: MCPServer[Any]) -> None:
    """Serve MCP over stdin/stdout, answering malformed lines.

    The SDK's stdio transport drops a line that is not JSON-RPC without a
    word, so a client waits forever. Here such a line gets a JSON-RPC error
    (``-32700`` parse error, or ``-32600`` invalid request; ``id`` null, as
    JSON-RPC 2.0 says when the id cannot be known) and serving goes on.
    """
    lowlevel = app._lowlevel_server  # what MCPServer.run_stdio_async drives
    async with stdio_server() as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def pump() -> None:
            async with send:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        await write_stream.send(SessionMessage(_protocol_error(item)))
                    else:
                        await send.send(item)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(pump)
            await lowlevel.run(receive, write_stream, lowlevel.create_initialization_options())
            tasks.cancel_scope.cancel()


def _protocol_error(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error for a line the transport could not read as a message."""
    parse = isinstance(exc, ValidationError) and any(
        error["type"] == "json_invalid" for error in exc.errors()
    )
    if parse or not isinstance(exc, ValidationError):
        error = ErrorData(code=PARSE_ERROR, message="Parse error: the line is not valid JSON")
    else:
        error = ErrorData(
            code=INVALID_REQUEST,
            message="Invalid Request: not a JSON-RPC 2.0 request, notification or response",
        )
    log.warning("answered a malformed line on stdin with JSON-RPC error %d", error.code)
    return JSONRPCError(jsonrpc="2.0", id=None, error=error)


__all__ = ["forbid_extra_arguments", "serve_stdio"]
