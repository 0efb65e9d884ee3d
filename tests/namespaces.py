"""Helpers for tests that need root: another PID namespace (``unshare``), a
``/proc`` mounted ``hidepid=2``. They skip with the reason elsewhere, but
never when ``CI=true`` (CI runs them as root)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

UNSHARE_PID = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c")
"""Run a command in a new PID namespace with its own ``/proc`` (same hostname)."""


def in_new_pid_namespace(*command: str) -> tuple[str, ...]:
    """``command`` as the child of a shell that is PID 1 of a new PID namespace:
    the command gets a small PID and a live parent (the shell), as under a
    container's init; killing the wrapper kills the whole namespace."""
    return (*UNSHARE_PID, '"$@"; exit $?', "sh", *command)


def require_root_and_unshare(what: str) -> None:
    """Skip (fail under CI=true) unless this runs as root with a working ``unshare``."""
    reason = None
    if os.geteuid() != 0:
        reason = f"{what} needs root (unshare, mount)"
    elif shutil.which("unshare") is None:
        reason = f"{what} needs util-linux unshare"
    else:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"],
            capture_output=True,
            check=False,
            timeout=10,
        )
        if done.returncode != 0:
            reason = f"{what}: unshare --pid does not work here ({done.stderr.decode()[:200]})"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
