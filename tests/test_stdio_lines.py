"""The one private SDK use: answering malformed stdin lines (``mcp/stdio_lines.py``).

Issue "store seam", item 7. These tests fail first when an ``mcp`` release
moves what the module relies on: the private attribute and its signature, the
public transport's way of handing over a line it could not read, and the
behaviour over a real process's stdio.
"""

from __future__ import annotations

import inspect
import io
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.models import InitializationOptions
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from mcp_server_heartbeat.mcp.stdio_lines import PRIVATE_SDK_USE, protocol_error

PARSE_ERROR, INVALID_REQUEST = -32700, -32600


def test_the_private_attribute_and_its_signature_are_still_there() -> None:
    """``MCPServer._lowlevel_server`` is the low-level ``Server`` that
    ``run_stdio_async`` drives, with ``run(read, write, options)``."""
    assert PRIVATE_SDK_USE[0] == "MCPServer._lowlevel_server"
    app: MCPServer[Any] = MCPServer("probe")
    lowlevel = app._lowlevel_server
    assert isinstance(lowlevel, Server)
    parameters = list(inspect.signature(lowlevel.run).parameters)
    assert parameters[:3] == ["read_stream", "write_stream", "initialization_options"]
    assert isinstance(lowlevel.create_initialization_options(), InitializationOptions)
    # run_stdio_async still drives that object: the module does what it does.
    assert "self._lowlevel_server.run(" in inspect.getsource(MCPServer.run_stdio_async)


@pytest.mark.anyio
async def test_the_transport_still_hands_over_a_bad_line_as_an_exception() -> None:
    """What AnsweringStream relies on: a line the SDK's stdio transport cannot read
    arrives on the read stream as an exception, the next good line as a message."""
    lines = (
        "this is not json\n"
        '{"jsonrpc": "2.0", "id": 7}\n'
        '{"jsonrpc": "2.0", "method": "ping", "id": 1}\n'
    )
    stdin = anyio.wrap_file(io.StringIO(lines))
    stdout = anyio.wrap_file(io.StringIO())
    received: list[Any] = []
    with anyio.fail_after(10):
        transport = stdio_server(stdin=stdin, stdout=stdout)
        # Both streams are closed on the way out, so the transport's tasks end.
        async with transport as (read_stream, write_stream), read_stream, write_stream:
            async for item in read_stream:
                received.append(item)
    bad, invalid, good = received
    assert isinstance(bad, Exception) and isinstance(invalid, Exception)
    assert isinstance(good, SessionMessage)
    assert protocol_error(bad).error.code == PARSE_ERROR
    assert protocol_error(invalid).error.code == INVALID_REQUEST


def test_a_malformed_line_is_answered_over_real_stdio(tmp_path: Path) -> None:
    """Before the handshake and after it, a bad line gets its JSON-RPC error
    (``id`` null) and the next request is served."""
    from stdio_client import StdioServer

    root = tmp_path / "project"
    root.mkdir()
    server = StdioServer(root, "--session-id", "lines")
    try:
        server.send(b"this is not json")
        reply = server.receive(None)  # type: ignore[arg-type]
        assert reply["id"] is None and reply["error"]["code"] == PARSE_ERROR, reply
        server.initialize()
        server.send(b'{"jsonrpc": "2.0", "id": 7}')
        reply = server.receive(None)  # type: ignore[arg-type]
        assert reply["id"] is None and reply["error"]["code"] == INVALID_REQUEST, reply
        assert server.call("session_info")["structuredContent"]["tracking_enabled"] is True
        server.close_stdin()
        assert server.wait() == 0
        assert "Traceback" not in server.stderr()
    finally:
        server.stop()
