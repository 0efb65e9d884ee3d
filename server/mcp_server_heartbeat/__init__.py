"""mcp-server-heartbeat: a stdio MCP server that records each coding session in a
project's heartbeat directory and lets sessions claim plans exclusively, with
fencing tokens and takeover only on proof of death.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console script ``mcp-server-heartbeat``: run the CLI and exit with its code.

    ``statusline`` without flags (run on every status-line refresh) goes straight
    to its command, without the argument parser and the server's imports.
    """
    if sys.argv[1:] == ["statusline"]:
        from .cli.statusline import main as statusline_main

        sys.exit(statusline_main())
    from .cli.main import main as cli_main

    sys.exit(cli_main())


__all__ = ["main"]
