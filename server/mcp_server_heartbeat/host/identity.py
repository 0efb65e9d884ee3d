"""Who this session is, read once at start (design: "Session identity").

| field | source |
|---|---|
| session_id | ``--session-id``, else ``CLAUDE_CODE_SESSION_ID``, else a new UUID4 |
| entrypoint | ``CLAUDE_CODE_ENTRYPOINT``, else the client's ``clientInfo.name`` (later) |
| agent_version | ``AI_AGENT``, else ``clientInfo.name/version`` (later) |
| branch | ``git rev-parse --abbrev-ref HEAD`` in the working directory, else None |
| cwd | the working directory |
| worktree | the top level of the git worktree the session works in (from the configuration) |
| host, pid, pid_started_at | hostname, this process, its start time (UTC) |
| pid_start_ticks | its start in clock ticks since boot (exact; no wall-clock step moves it) |
| client_pid | the parent process (the MCP client) |
| boot_id | ``/proc/sys/kernel/random/boot_id``: this kernel boot, else None |
| pid_namespace | ``readlink /proc/self/ns/pid``, e.g. ``pid:[4026531836]``, else None |
| time_namespace | ``readlink /proc/self/ns/time`` (Linux >= 5.6), else None |

The kernel facts, the host's name and the observer of this process's space
are :mod:`.process_space` (the light part, imported here: the status line and
the hooks observe without loading this module).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..domain.validation import validate_id
from .probe import process_start_ticks, process_start_time
from .process_space import (
    BOOT_ID_PATH,
    host_name,
    observer_here,
    read_boot_id,
    read_pid_namespace,
    read_time_namespace,
)


@dataclass(frozen=True)
class Identity:
    """This session's identity. ``entrypoint``/``agent_version`` may be filled later
    from the MCP client's ``clientInfo`` when the environment does not give them."""

    session_id: str
    session_id_source: str
    entrypoint: str | None
    agent_version: str | None
    branch: str | None
    cwd: str
    host: str
    pid: int
    pid_started_at: datetime | None
    client_pid: int
    worktree: str | None = None
    pid_start_ticks: int | None = None
    """``pid``'s start in clock ticks since boot (exact proof of PID reuse), or None."""
    boot_id: str | None = field(default_factory=read_boot_id)
    pid_namespace: str | None = field(default_factory=read_pid_namespace)
    time_namespace: str | None = field(default_factory=read_time_namespace)


def detect_identity(
    session_id: str | None,
    env: Mapping[str, str],
    cwd: Path,
    worktree: str | None = None,
    branch: Callable[[], str | None] | None = None,
) -> Identity:
    """Read this session's identity (see module doc). ``branch`` gives the branch
    when git was already asked (``git.start_git_branch``); else git is run here.

    Raises:
        InvalidInputError: the session id given by flag or environment is not a
            valid id (it becomes a file name).
    """
    import uuid  # the server's start only: observers (status line, hooks) skip it

    from .git import git_branch

    if session_id is not None:
        sid, source = validate_id(session_id, "--session-id"), "flag --session-id"
    elif env.get("CLAUDE_CODE_SESSION_ID"):
        sid = validate_id(env["CLAUDE_CODE_SESSION_ID"], "CLAUDE_CODE_SESSION_ID")
        source = "env CLAUDE_CODE_SESSION_ID"
    else:
        sid, source = str(uuid.uuid4()), "new uuid4"
    pid = os.getpid()
    return Identity(
        session_id=sid,
        session_id_source=source,
        entrypoint=env.get("CLAUDE_CODE_ENTRYPOINT") or None,
        agent_version=env.get("AI_AGENT") or None,
        branch=git_branch(cwd) if branch is None else branch(),
        cwd=str(cwd),
        host=host_name(),
        pid=pid,
        pid_started_at=process_start_time(pid),
        pid_start_ticks=process_start_ticks(pid),
        client_pid=os.getppid(),
        worktree=worktree,
    )


SESSION_ENV = "HEARTBEAT_SESSION_ID"
"""The variable naming the agent's session in commands it runs: the SessionStart
hook exports it through Claude Code's ``CLAUDE_ENV_FILE``."""


__all__ = [
    "BOOT_ID_PATH",
    "SESSION_ENV",
    "Identity",
    "detect_identity",
    "host_name",
    "observer_here",
    "read_boot_id",
    "read_pid_namespace",
    "read_time_namespace",
]
