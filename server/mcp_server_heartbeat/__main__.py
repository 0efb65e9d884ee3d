"""``python -m mcp_server_heartbeat``: the same as the console script."""

from mcp_server_heartbeat import main

main()
