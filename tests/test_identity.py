"""Session identity: where each field comes from, and git never reading stdin."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from mcp_server_heartbeat.domain.errors import InvalidInputError
from mcp_server_heartbeat.host import git
from mcp_server_heartbeat.host.identity import detect_identity


def test_session_id_sources_in_order(tmp_path):
    env = {"CLAUDE_CODE_SESSION_ID": "from-env"}
    assert detect_identity("from-flag", env, tmp_path).session_id == "from-flag"
    from_env = detect_identity(None, env, tmp_path)
    assert (from_env.session_id, from_env.session_id_source) == (
        "from-env",
        "env CLAUDE_CODE_SESSION_ID",
    )
    fresh = detect_identity(None, {}, tmp_path)
    assert uuid.UUID(fresh.session_id).version == 4


def test_claude_code_environment_and_process_facts(tmp_path):
    env = {"CLAUDE_CODE_ENTRYPOINT": "cli", "AI_AGENT": "claude-code/2.1.329"}
    ident = detect_identity("s1", env, tmp_path)
    assert (ident.entrypoint, ident.agent_version) == ("cli", "claude-code/2.1.329")
    assert (ident.pid, ident.client_pid, ident.cwd) == (os.getpid(), os.getppid(), str(tmp_path))
    assert ident.pid_started_at is not None
    assert ident.branch is None  # not a git work tree


def test_branch_from_git(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "feat/43-login", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit",
         "-q", "--allow-empty", "-m", "init"],
        check=True,
    )  # fmt: skip
    assert detect_identity("s1", {}, tmp_path).branch == "feat/43-login"


def test_an_invalid_session_id_from_the_environment_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match=r"CLAUDE_CODE_SESSION_ID '\.\./x' is not accepted"):
        detect_identity(None, {"CLAUDE_CODE_SESSION_ID": "../x"}, tmp_path)


def test_git_never_inherits_stdin(monkeypatch, tmp_path: Path):
    """stdin is the MCP protocol stream: a child that reads it would steal bytes."""
    seen: list[dict] = []

    def fake_run(args, **kwargs):
        seen.append(kwargs)
        return subprocess.CompletedProcess(args, 0, stdout="main\n", stderr="")

    monkeypatch.setattr(git.subprocess, "run", fake_run)
    assert git.git_branch(tmp_path) == "main"
    assert seen and seen[0]["stdin"] is subprocess.DEVNULL
    assert seen[0]["timeout"] == git.GIT_TIMEOUT_S
