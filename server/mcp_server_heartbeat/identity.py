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
| client_pid | the parent process (the MCP client) |
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .git import git_branch
from .probe import process_start_time
from .validation import validate_id


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


def detect_identity(
    session_id: str | None, env: Mapping[str, str], cwd: Path, worktree: str | None = None
) -> Identity:
    """Read this session's identity (see module doc).

    Raises:
        InvalidInputError: the session id given by flag or environment is not a
            valid id (it becomes a file name).
    """
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
        branch=git_branch(cwd),
        cwd=str(cwd),
        host=socket.gethostname(),
        pid=pid,
        pid_started_at=process_start_time(pid),
        client_pid=os.getppid(),
        worktree=worktree,
    )


__all__ = ["Identity", "detect_identity"]
