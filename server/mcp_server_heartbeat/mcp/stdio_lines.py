"""Serving stdio with an answer for every line: the one private SDK use.

The SDK's stdio transport (``mcp.server.stdio.stdio_server``, public) puts a
line that is not JSON-RPC on its read stream as an exception, and the server
drops it without a word, so a client that sent it waits forever. Here such a
line gets a JSON-RPC error (``-32700`` parse error, or ``-32600`` invalid
request; ``id`` null, as JSON-RPC 2.0 says when the id cannot be known) and
serving goes on.

Why this cannot be done publicly (``mcp`` 2.3): a malformed line never becomes
a request, so middleware never sees it; ``MCPServer.run_stdio_async`` opens the
transport itself and offers no hook between the transport and the server. So
the server reads the transport through :class:`AnsweringStream` and is run the way
``run_stdio_async`` does it, through the private attribute
``MCPServer._lowlevel_server`` and its ``run(read_stream, write_stream,
initialization_options)`` and ``create_initialization_options()``.
:data:`PRIVATE_SDK_USE` names exactly that; ``tests/test_stdio_lines.py``
fails if an SDK release moves it, and drives a real process over stdio.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from .stdio_pipes import StdinLines, StdoutLines, claimed_stdio

log = logging.getLogger(__name__)

PRIVATE_SDK_USE = (
    "MCPServer._lowlevel_server",
    "Server.run(read_stream, write_stream, initialization_options)",
    "Server.create_initialization_options()",
)
"""The SDK internals this module relies on (checked by the tests)."""


async def serve_stdio(app: MCPServer[Any]) -> None:
    """Serve MCP over stdin/stdout until stdin closes, answering malformed lines.

    Everything else is the SDK's: its transport (fed by :mod:`.stdio_pipes`,
    one thread for stdin and one for stdout instead of a worker-thread hop per
    line), its server loop, the middleware and tools registered on ``app``.
    """
    lowlevel = app._lowlevel_server  # what MCPServer.run_stdio_async drives
    options = lowlevel.create_initialization_options()
    with contextlib.ExitStack() as claim:
        stdout = None
        try:
            stdin_fd, stdout_fd = claim.enter_context(claimed_stdio())
        except OSError as exc:  # no /dev/null, fd 2 closed: the SDK's transport, as it is
            log.warning("serving stdio through the SDK's transport: %s", exc)
            transport = stdio_server()
        else:
            stdin = StdinLines(stdin_fd)
            stdout = StdoutLines(stdout_fd, on_broken=stdin.end)
            transport = stdio_server(stdin=stdin, stdout=stdout)  # type: ignore[arg-type]
        try:
            async with transport as (read_stream, write_stream):
                messages = AnsweringStream(read_stream, write_stream)
                await lowlevel.run(messages, write_stream, options)
        finally:
            if stdout is not None:
                stdout.drain()  # the last replies reach a client that still reads


class AnsweringStream:
    """The transport's read stream with each malformed line answered on the way.

    What the server reads: only messages. An exception the transport puts on
    the stream for a line it could not read is answered at once with
    :func:`protocol_error` on ``replies`` and skipped. It is read in the
    server's own receive call, so a message costs no extra task or channel
    hop. Satisfies the SDK's read-stream protocol (``receive``, ``aclose``,
    async iteration, async context manager).
    """

    def __init__(self, lines: Any, replies: Any) -> None:
        """``lines``: the transport's read stream (messages and exceptions);
        ``replies``: its write stream."""
        self._lines = lines
        self._replies = replies

    @property
    def last_context(self) -> Any:
        """The sender's context of the last message, as the transport's stream gives it."""
        return getattr(self._lines, "last_context", None)

    async def receive(self) -> SessionMessage:
        """The next message; raises ``anyio.EndOfStream`` when stdin closed."""
        while True:
            item = await self._lines.receive()
            if not isinstance(item, Exception):
                return item
            await self._replies.send(SessionMessage(protocol_error(item)))

    async def aclose(self) -> None:
        await self._lines.aclose()

    def __aiter__(self) -> AnsweringStream:
        return self

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> AnsweringStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def protocol_error(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error for a line the transport could not read as a message:
    ``-32700`` when it is not JSON, ``-32600`` when it is JSON but not JSON-RPC 2.0."""
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


__all__ = ["PRIVATE_SDK_USE", "AnsweringStream", "protocol_error", "serve_stdio"]
