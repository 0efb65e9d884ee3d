"""After ``/clear`` Claude Code sends a new conversation id to the status line while
the MCP server it started keeps running under the old one: the line must show that
server's session (plan and token), as the start hook does, not "no session record".

Real processes: this test process plays Claude Code (the server's parent, and the
status-line command's parent).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stdio_client import StdioServer, clean_env


def statusline(root: Path, session_id: str) -> str:
    payload = {
        "session_id": session_id,
        "cwd": str(root),
        "workspace": {"current_dir": str(root), "project_dir": str(root)},
    }
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "statusline"],
        input=json.dumps(payload),
        cwd=root,
        env=clean_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def start_hook(root: Path, session_id: str) -> None:
    payload = {"session_id": session_id, "cwd": str(root), "source": "clear"}
    subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "hook", "session-start"],
        input=json.dumps(payload),
        cwd=root,
        env=clean_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("with_hook", [False, True])
def test_statusline_after_clear_shows_the_conversations_server(tmp_path, with_hook):
    root = tmp_path / "project"
    root.mkdir()
    server = StdioServer(root, "--session-id", "before-clear", "--interval", "0.5")
    try:
        server.initialize()
        claimed = server.call("claim_plan", plan_id="043")["structuredContent"]
        assert claimed["outcome"] == "claimed"
        if with_hook:
            start_hook(root, "after-clear")  # writes a record of its own for the new id
        line = statusline(root, "after-clear")
        assert line.startswith(f"♥ 043 #{claimed['fencing_token']} · beat "), line
        assert line.endswith("· 0 others live"), line
    finally:
        server.stop()
