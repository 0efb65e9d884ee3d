"""The branch asked of git at the server's start (``start_git_branch``) is what
``git_branch`` answers, in every case ``git_branch`` covers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mcp_server_heartbeat.host.git import git_branch, start_git_branch


def _git(cwd: Path, *args: str) -> None:
    base = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*base, *args], cwd=cwd, check=True, capture_output=True)


def test_on_a_branch_detached_and_outside_a_repository(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "feat/x")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    assert start_git_branch(repo)() == git_branch(repo) == "feat/x"
    _git(repo, "checkout", "-q", "--detach")
    assert start_git_branch(repo)() == git_branch(repo) == "HEAD"
    assert start_git_branch(outside)() is None
    assert git_branch(outside) is None


def test_an_unborn_branch_is_none_as_with_git_branch(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    assert start_git_branch(tmp_path)() == git_branch(tmp_path)


def test_without_git_it_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    branch = start_git_branch(tmp_path)
    assert branch() is None
    assert branch() is None  # asked twice: the same answer, git not run again
