"""Read-only git queries with a timeout and no inherited stdin.

A subprocess that inherits the server's stdin can steal protocol bytes or hang
the server (MCP SDK pitfall), so git always gets ``stdin=DEVNULL``.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable
from pathlib import Path

GIT_TIMEOUT_S = 2.0


def git_output(args: list[str], cwd: Path) -> str | None:
    """Run ``git <args>`` in ``cwd``; its stripped stdout, or None on any failure."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def git_run(
    args: list[str], cwd: Path, timeout: float = 30.0, stdin_text: str | None = None
) -> subprocess.CompletedProcess[str] | None:
    """Run ``git <args>`` in ``cwd`` (stdin: ``stdin_text`` or nothing); the
    finished process (any exit code), or None when git could not run or took
    longer than ``timeout`` seconds."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin_text,
            stdin=None if stdin_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


BRANCH_ARGS = ["rev-parse", "--abbrev-ref", "HEAD"]


def git_branch(cwd: Path) -> str | None:
    """The current branch (``HEAD`` when detached), or None outside a repository."""
    return git_output(BRANCH_ARGS, cwd)


def start_git_branch(cwd: Path) -> Callable[[], str | None]:
    """Start asking git for the branch now; the returned function waits for the
    answer (at most :data:`GIT_TIMEOUT_S` more seconds) and gives what
    :func:`git_branch` gives. The server starts it first thing, so git runs
    while the server imports its modules (git on the other core)."""
    try:
        process = subprocess.Popen(
            ["git", *BRANCH_ARGS],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except (OSError, subprocess.SubprocessError):
        return lambda: None

    @functools.cache
    def branch() -> str | None:
        try:
            out, _ = process.communicate(timeout=GIT_TIMEOUT_S)
        except subprocess.SubprocessError:
            process.kill()
            process.communicate()
            return None
        out = out.strip()
        return out if process.returncode == 0 and out else None

    return branch


__all__ = ["GIT_TIMEOUT_S", "git_branch", "git_output", "git_run", "start_git_branch"]
