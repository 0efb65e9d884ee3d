"""mcp-server-heartbeat: a stdio MCP server that records each coding session in a
project's heartbeat directory and lets sessions claim plans exclusively, with
fencing tokens and takeover only on proof of death.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console script ``mcp-server-heartbeat``: run the CLI and exit with its code.

    ``statusline`` with no flags or only configuration flags (run on every
    status-line refresh) goes straight to its command, without the argument
    parser and the server's imports; ``status`` reads its flags the same way when
    it can (:func:`~.cli.status.main`).
    """
    if sys.argv[1:2] == ["statusline"]:
        from .cli.statusline import given_flags
        from .cli.statusline import main as statusline_main

        if given_flags(sys.argv[2:]) is not None:
            sys.exit(statusline_main(sys.argv[2:]))
    if sys.argv[1:2] == ["status"]:
        from .cli.status import main as status_main

        sys.exit(status_main(sys.argv[2:]))
    from .cli.main import main as cli_main

    sys.exit(cli_main())


__all__ = ["main"]
