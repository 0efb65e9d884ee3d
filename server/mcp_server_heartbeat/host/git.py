"""Read-only git queries with a timeout and no inherited stdin.

A subprocess that inherits the server's stdin can steal protocol bytes or hang
the server (MCP SDK pitfall), so git always gets ``stdin=DEVNULL``.
"""

from __future__ import annotations

import subprocess
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


def git_branch(cwd: Path) -> str | None:
    """The current branch (``HEAD`` when detached), or None outside a repository."""
    return git_output(["rev-parse", "--abbrev-ref", "HEAD"], cwd)


__all__ = ["GIT_TIMEOUT_S", "git_branch", "git_output", "git_run"]
