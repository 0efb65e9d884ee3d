"""Install routes that work from anywhere: ``mcp.json.example`` started the way
Claude Code starts it from a subdirectory, and the ``claude mcp add`` command the
server prints at start naming this very copy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_server_heartbeat.cli.main import connect_command
from stdio_client import CONSOLE_SCRIPT, StdioServer, clean_env
from test_domain import DIR, git

EXAMPLE = Path(__file__).resolve().parent.parent / "mcp.json.example"
BIN = str(Path(CONSOLE_SCRIPT).parent)


def expand(text: str, env: dict[str, str]) -> str:
    """``${VAR}`` and ``${VAR:-default}`` as Claude Code expands them in .mcp.json."""

    def one(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        value = env.get(name)
        if value:
            return value
        if default is None:
            raise KeyError(name)
        return default

    return re.sub(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}", one, text)


def start_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if "claude mcp add" in line)


@pytest.mark.slow
def test_the_example_config_works_from_a_subdirectory_with_the_server_on_path(tmp_path):
    repo = tmp_path / "repo"
    deeper = repo / "sub" / "deeper"
    deeper.mkdir(parents=True)
    git(tmp_path, "init", "-q", str(repo))
    # Claude Code started in a subdirectory; the server installed outside the project
    # (pipx / uv tool put it on PATH): the example names it by its bare name.
    env = clean_env(deeper, PATH=f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin")
    server_config = json.loads(EXAMPLE.read_text())["mcpServers"]["heartbeat"]
    command = expand(server_config["command"], env)
    args = [expand(arg, env) for arg in server_config["args"]]
    env.update({key: expand(value, env) for key, value in server_config["env"].items()})
    done = subprocess.run(
        [command, *args, "--session-id", "from-deeper"],
        cwd=deeper,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # A session that ends at once, without a tool call, leaves no record (health
    # checks leave no litter), only its events: in the repository's directory.
    events = [json.loads(line) for line in (repo / DIR / "events.jsonl").read_text().splitlines()]
    assert (events[0]["event"], events[0]["session_id"]) == ("session_started", "from-deeper")
    assert not (deeper / ".ahrena").exists()
    assert start_line(done.stderr).endswith("claude mcp add heartbeat -- mcp-server-heartbeat)")


@pytest.mark.slow
def test_the_start_line_names_this_copy_by_absolute_path_when_not_on_path(tmp_path):
    server = StdioServer(tmp_path, env=clean_env(tmp_path, PATH="/usr/bin:/bin"))
    try:
        server.initialize()
        line = start_line(server.stderr())
    finally:
        server.stop()
    assert line.endswith(f"claude mcp add heartbeat -- {CONSOLE_SCRIPT})")


def test_connect_command_for_each_way_of_running():
    on_path = connect_command(CONSOLE_SCRIPT, sys.executable, BIN)
    assert on_path == "claude mcp add heartbeat -- mcp-server-heartbeat"
    off_path = connect_command(CONSOLE_SCRIPT, sys.executable, "/usr/bin")
    assert off_path == f"claude mcp add heartbeat -- {CONSOLE_SCRIPT}"
    as_module = connect_command("/x/mcp_server_heartbeat/__main__.py", "/opt/py dir/python", "")
    assert as_module == "claude mcp add heartbeat -- '/opt/py dir/python' -m mcp_server_heartbeat"
