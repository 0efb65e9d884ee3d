"""Where this server is stricter than the SDK's defaults (MCP layer only).

* Tool arguments are validated strictly and as sent: unknown arguments are
  refused, not dropped (a misspelt ``fencing_tokne`` must not release without
  the token check); a value of the wrong JSON type is refused, not coerced
  (``"yes"`` is not ``true``, ``"1"`` is not ``1``, ``"null"`` is not
  ``null``); the advertised input schema says exactly that.
* A refused argument gets a message written for the agent (argument, value
  given, rule, what is accepted), not pydantic's report.
* Only capabilities that exist are advertised (no empty ``prompts``); an
  unknown resource answers ``-32002`` (resource not found).
* A line on stdin that is not JSON-RPC gets a JSON-RPC error instead of
  silence, so a client never waits forever; serving goes on.

:class:`HeartbeatServer` overrides public ``MCPServer`` methods only. Three
places reach into SDK internals of the pinned ``mcp>=2.3,<3``
(``_tool_manager``, ``_lowlevel_server`` and its ``_request_handlers``); the
tests in ``tests/test_fault_input.py`` and ``tests/test_protocol_strict.py``
fail if an SDK release moves them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceNotFoundError,
    ToolError,
    UnexpectedToolError,
)
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ConfigDict, ValidationError

from ..domain.validation import describe_arguments_error

log = logging.getLogger(__name__)

RESOURCE_NOT_FOUND = -32002
"""MCP's "resource not found" error code (spec 2024-11-05 to 2025-11-25, the
revisions Claude Code and the MCP Inspector negotiate). The SDK answers
``-32602`` for an unknown URI and ``-32603`` for any resource error."""

PROMPT_METHODS = ("prompts/list", "prompts/get")


class HeartbeatServer(MCPServer[Any]):
    """``MCPServer`` with agent-readable argument errors and honest resource errors.

    Overrides public methods only (``call_tool``, ``read_resource``), which the
    SDK's request handlers call.
    """

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        """Call a tool; a refused argument becomes one message written for the agent.

        The SDK raises a plain ``ToolError`` with the arguments'
        ``ValidationError`` as ``__cause__`` (a tool's own errors are wrapped
        twice, and a crash, such as a result that fails its output schema, is an
        ``UnexpectedToolError``). The message names the argument, the value
        given, the rule and what the input schema accepts.
        """
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            schema = await self._input_schema(name)
            raise ToolError(describe_arguments_error(name, cause.errors(), schema)) from cause

    async def _input_schema(self, name: str) -> dict[str, Any]:
        for tool in await self.list_tools():
            if tool.name == name:
                return tool.input_schema
        return {}  # pragma: no cover - the SDK refuses an unknown tool before validation

    async def read_resource(
        self, uri: Any, context: Context[Any, Any] | None = None
    ) -> Iterable[Any] | Any:
        """Read a resource; an unknown URI answers ``-32002`` (resource not found)."""
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError as exc:
            raise resource_not_found(str(exc), str(uri)) from exc


def resource_not_found(message: str, uri: str) -> MCPError:
    """The error a resource function raises for a session or plan that does not exist."""
    return MCPError(code=RESOURCE_NOT_FOUND, message=message, data={"uri": uri})


class _VerbatimMetadata(FuncMetadata):
    """The SDK's argument metadata without its JSON pre-parsing.

    The SDK decodes a string argument that holds JSON when the parameter is
    not a plain ``str`` (``"null"`` becomes ``None``, ``'{"kind": ...}'`` an
    object), so ``"fencing_token": "null"`` would release without the token
    check. Arguments are validated as sent.
    """

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        return data


def strict_tool_arguments(app: MCPServer[Any]) -> None:
    """Validate every tool's arguments strictly and as sent; advertise exactly that.

    Each tool's argument model becomes a subclass with ``extra="forbid"`` (an
    unknown argument is refused, not dropped) and ``strict=True`` (no type
    coercion), its metadata skips the SDK's JSON pre-parsing, and its input
    schema is regenerated from that model with ``additionalProperties: false``.
    Patterns and length limits come from the argument types (``models.*Arg``),
    so schema and validation are one source. Fault suite: bad input.
    """
    manager = getattr(app, "_tool_manager", None)
    if manager is None:  # pragma: no cover - SDK internals moved; keep serving
        log.warning("cannot make tools refuse unknown arguments with this SDK version")
        return
    for tool in manager.list_tools():
        old = tool.fn_metadata
        base = old.arg_model
        config = ConfigDict(**{**base.model_config, "extra": "forbid", "strict": True})
        strict = type(base.__name__, (base,), {"model_config": config})
        tool.fn_metadata = _VerbatimMetadata(
            arg_model=strict,
            output_schema=old.output_schema,
            output_model=old.output_model,
            wrap_output=old.wrap_output,
        )
        tool.parameters = {
            **strict.model_json_schema(by_alias=True),
            "additionalProperties": False,
        }


def advertise_only_what_exists(app: MCPServer[Any], prompts: Sequence[str] = ()) -> None:
    """Withdraw the ``prompts`` capability when the server has no prompts.

    The SDK registers ``prompts/list`` and ``prompts/get`` on every server and
    advertises ``prompts`` for them; ``prompts/get`` of an unknown name then
    answers error code 0 with a traceback. Without the handlers the capability
    is not advertised and ``prompts/*`` answers ``-32601`` (method not found).
    """
    if prompts:
        return
    handlers = app._lowlevel_server._request_handlers
    for method in PROMPT_METHODS:
        handlers.pop(method, None)


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


__all__ = [
    "RESOURCE_NOT_FOUND",
    "HeartbeatServer",
    "advertise_only_what_exists",
    "resource_not_found",
    "serve_stdio",
    "strict_tool_arguments",
]
