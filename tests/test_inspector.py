"""A real MCP client: the MCP Inspector's CLI drives the installed console script.

``.ci/run`` installs a pinned ``@modelcontextprotocol/inspector`` into a scratch
folder and exports ``HEARTBEAT_INSPECTOR`` (its ``mcp-inspector`` binary). In CI
(``CI=true``) a missing Inspector fails the test; locally it is skipped with the
reason. Each Inspector call starts one server process, calls one method and
disconnects (the server then ends its session and releases its claim), so the
long-lived holder in the refusal check is a server this test keeps open.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stdio_client import CONSOLE_SCRIPT, StdioServer, clean_env

INSPECTOR_ENV = "HEARTBEAT_INSPECTOR"
INSPECTOR_PIN = "2.12.0"
EXIT_TOOL_ERROR = 5
"""The Inspector CLI's exit code when the tool result has ``isError``."""


def inspector() -> Path:
    """The Inspector binary, or skip (locally) / fail (in CI) with the reason."""
    configured = os.environ.get(INSPECTOR_ENV)
    if configured and Path(configured).is_file():
        return Path(configured)
    why = (
        f"{INSPECTOR_ENV} is not set to an installed mcp-inspector"
        if not configured
        else f"{INSPECTOR_ENV}={configured} does not exist"
    )
    install = (
        f"npm install --prefix <dir> @modelcontextprotocol/inspector@{INSPECTOR_PIN}, then "
        f"{INSPECTOR_ENV}=<dir>/node_modules/.bin/mcp-inspector (.ci/run does this)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {why}: {install}")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(f"node/npm not found, so the MCP Inspector cannot run ({why})")
    pytest.skip(f"{why}: {install}")


@pytest.fixture
def run_inspector(tmp_path: Path) -> Any:
    binary = inspector()
    home = tmp_path / "inspector-home"
    home.mkdir()
    root = tmp_path / "project"
    root.mkdir()

    def run(session_id: str, *method: str) -> tuple[int, dict[str, Any], str]:
        env = clean_env(root, HOME=str(home))
        done = subprocess.run(
            [str(binary), "--cli", CONSOLE_SCRIPT, "--root", str(root), "--session-id",
             session_id, "--method", *method],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            timeout=90,
            check=False,
        )  # fmt: skip
        try:
            output = json.loads(done.stdout)
        except ValueError:
            pytest.fail(f"the Inspector printed no JSON (exit {done.returncode}): {done.stderr}")
        return done.returncode, output, done.stderr

    run.root = root  # type: ignore[attr-defined]
    return run


@pytest.mark.slow
def test_the_inspector_lists_claims_is_refused_and_lists_sessions(run_inspector: Any) -> None:
    code, tools, err = run_inspector("insp-list", "tools/list")
    assert code == 0, err
    names = {tool["name"] for tool in tools["tools"]}
    assert names >= {"heartbeat", "claim_plan", "list_sessions", "release", "session_info"}
    claim_tool = next(tool for tool in tools["tools"] if tool["name"] == "claim_plan")
    assert "outputSchema" in claim_tool

    code, claimed, err = run_inspector(
        "insp-a", "tools/call", "--tool-name", "claim_plan", "--tool-arg", "plan_id=043"
    )
    assert code == 0, err
    assert claimed["isError"] is False
    assert claimed["structuredContent"]["outcome"] == "claimed"
    assert claimed["structuredContent"]["fencing_token"] == 1

    holder = StdioServer(run_inspector.root, "--session-id", "holder")
    try:
        holder.initialize()
        held = holder.call("claim_plan", plan_id="043")["structuredContent"]
        # insp-a disconnected and released: the holder gets the next token.
        assert (held["outcome"], held["fencing_token"]) == ("claimed", 2)

        code, refused, err = run_inspector(
            "insp-b", "tools/call", "--tool-name", "claim_plan", "--tool-arg", "plan_id=043"
        )
        assert code == 0, err
        result = refused["structuredContent"]
        assert (result["outcome"], result["claimed"]) == ("held_by_other", False)
        assert result["holder"]["session_id"] == "holder"
        assert "never displaced" in result["message"]

        code, listed, err = run_inspector("insp-c", "tools/call", "--tool-name", "list_sessions")
        assert code == 0, err
        sessions = {s["session_id"]: s for s in listed["structuredContent"]["sessions"]}
        assert sessions["holder"]["plan_id"] == "043"
        assert sessions["holder"]["status"] == "active"
        assert sessions["insp-c"]["relationship"] == "self"
        assert "insp-a" not in sessions  # ended sessions are left out by default

        code, bad, err = run_inspector(
            "insp-d", "tools/call", "--tool-name", "claim_plan", "--tool-arg", "plan_id=../etc"
        )
        assert code == EXIT_TOOL_ERROR, err
        assert bad["isError"] is True
        assert 'plan_id "../etc" (a JSON string) is not accepted' in bad["content"][0]["text"]
    finally:
        holder.stop()
