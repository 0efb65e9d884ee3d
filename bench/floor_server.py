"""The floor for the stdio figures of ``bench/floor.py``: the MCP SDK's own
``MCPServer`` with one bare tool, ``echo(text) -> text``, over stdio.

Nothing of the product is imported: what this process costs (interpreter,
SDK import, one tool's schema, the JSON-RPC loop) is what any one-tool server
on this machine costs, so the product's figure divided by this one is the
overhead the product adds.

    python bench/floor_server.py     # speaks MCP on stdin/stdout until EOF
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

app = MCPServer("floor")


@app.tool()
def echo(text: str) -> str:
    """Return ``text`` unchanged."""
    return text


if __name__ == "__main__":
    app.run()
