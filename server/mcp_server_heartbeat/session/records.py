"""Opening a session's record: a fresh one, or the adoption of an existing one.

One rule for the MCP server (:meth:`~.service.SessionService.start`) and the
SessionStart hook (:func:`~mcp_server_heartbeat.cli.hooks.session_start`),
design "Session identity": a process starting under the ``session_id`` of an
existing record **adopts** it (resume, ``/mcp`` reconnect) only when the
adoption rule agrees (:func:`~mcp_server_heartbeat.domain.liveness.may_adopt`:
the record ended, names no process, is proven dead, or is the opener's own
client's); otherwise the opener must continue under a new id, because two live
processes never share one record. Pure: the caller reads the old record and
writes the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..domain.models import SessionRecord
from ..host.identity import Identity


@dataclass(frozen=True)
class Opener:
    """Who opens the record: the process that will own it and what it knows.

    For the server: its :class:`~.identity.Identity` (:meth:`of_identity`);
    for the start hook: the client process (Claude Code) as ``pid`` and
    ``client_pid``, and what the hook's payload and environment say.
    ``previous_session`` is the id this opener continues (a new id taken
    because the original's process may still run), else None.
    """

    session_id: str
    entrypoint: str | None
    agent_version: str | None
    branch: str | None
    cwd: str | None
    worktree: str | None
    host: str | None
    pid: int | None
    pid_started_at: datetime | None
    client_pid: int | None
    boot_id: str | None
    pid_namespace: str | None
    time_namespace: str | None
    heartbeat_interval_s: float | None = None
    previous_session: str | None = None
    pid_start_ticks: int | None = None

    @classmethod
    def of_identity(
        cls, identity: Identity, interval: float | None, continues: str | None = None
    ) -> Opener:
        """The opener of a server with ``identity``, beating every ``interval`` seconds."""
        return cls(
            session_id=identity.session_id,
            entrypoint=identity.entrypoint,
            agent_version=identity.agent_version,
            branch=identity.branch,
            cwd=identity.cwd,
            worktree=identity.worktree,
            host=identity.host,
            pid=identity.pid,
            pid_started_at=identity.pid_started_at,
            pid_start_ticks=identity.pid_start_ticks,
            client_pid=identity.client_pid,
            boot_id=identity.boot_id,
            pid_namespace=identity.pid_namespace,
            time_namespace=identity.time_namespace,
            heartbeat_interval_s=interval,
            previous_session=continues,
        )


@dataclass(frozen=True)
class Opening:
    """The outcome of :func:`open_record`.

    ``record`` is the record to write, or None when the old record may not be
    adopted (its process may still run): the opener continues under a new id.
    ``adopted`` is True when ``record`` adopts an existing record.
    """

    record: SessionRecord | None
    adopted: bool

    @property
    def continue_under_new_id(self) -> bool:
        """True when the opener must take a new id (nothing to write under this one)."""
        return self.record is None


def open_record(
    old: SessionRecord | None,
    opener: Opener,
    now: datetime,
    may_adopt: Callable[[SessionRecord], bool],
    boottime: float | None = None,
    keep_claim: bool = False,
) -> Opening:
    """The record an opener writes at ``now`` (aware UTC) under ``opener.session_id``.

    Args:
        old: the record under that id, or None.
        may_adopt: the adoption rule (``may_adopt(old)``; usually
            :func:`~mcp_server_heartbeat.domain.liveness.may_adopt` with the
            opener as observer and a process probe).
        boottime: ``CLOCK_BOOTTIME`` at ``now`` in seconds, recorded beside the
            heartbeat (None when unknown or not comparable).
        keep_claim: keep the claim (plan, token, claim time) and ``claim_lost``
            the old record shows, for the server to confirm against the ledger
            later (the start hook); False leaves the claim to the caller, which
            confirms it against the ledger itself (the server).

    Returns:
        A fresh record (no old one): the opener's process and identity,
        ``started_at`` = ``last_heartbeat`` = ``last_call_at`` = ``now``. An
        adopted one: the same, keeping the old ``started_at``, role, tags,
        ``previous_session`` (unless the opener continues another id),
        ``last_activity``, the old entrypoint/agent version when the opener
        has none, and ``adopted_at`` = ``now``; an earlier ``ended_at`` is
        cleared. Or no record, when ``may_adopt(old)`` is False.
    """
    if old is not None and not may_adopt(old):
        return Opening(record=None, adopted=False)
    record = SessionRecord(
        session_id=opener.session_id,
        entrypoint=opener.entrypoint,
        agent_version=opener.agent_version,
        branch=opener.branch,
        cwd=opener.cwd,
        worktree=opener.worktree,
        started_at=now,
        last_call_at=now,
        host=opener.host,
        pid=opener.pid,
        pid_started_at=opener.pid_started_at,
        pid_start_ticks=opener.pid_start_ticks,
        client_pid=opener.client_pid,
        heartbeat_interval_s=opener.heartbeat_interval_s,
        boot_id=opener.boot_id,
        pid_namespace=opener.pid_namespace,
        time_namespace=opener.time_namespace,
        previous_session=opener.previous_session,
        last_heartbeat=now,
        last_heartbeat_boottime=boottime,
    )
    if old is None:
        return Opening(record=record, adopted=False)
    update = {
        "started_at": old.started_at or now,
        "entrypoint": opener.entrypoint or old.entrypoint,
        "agent_version": opener.agent_version or old.agent_version,
        "role": old.role,
        "tags": old.tags,
        "previous_session": opener.previous_session or old.previous_session,
        "last_activity": old.last_activity,
        "adopted_at": now,
    }
    if keep_claim:
        update.update(
            plan_id=old.plan_id,
            fencing_token=old.fencing_token,
            claimed_at=old.claimed_at,
            claim_lost=old.claim_lost,
        )
    return Opening(record=record.model_copy(update=update), adopted=True)


__all__ = ["Opener", "Opening", "open_record"]
