"""Status, health and relationship of a session: pure functions.

Inputs are a record, the reader's clock reading, the reader's identity and a
process probe; nothing here touches the disk. The rules (design contract):

* ``ended``  — ``ended_at`` is set (a clean end).
* ``dead``   — same host and the probe proves the process gone (no such PID,
  a zombie, or a PID reused by a process with another start time).
* ``stale``  — no heartbeat for ``stale_after`` seconds (and not proven dead).
* ``idle``   — heartbeat fresh but no tool call for ``idle_after`` seconds.
* ``active`` — otherwise.

Proof of death outranks a fresh heartbeat: a ``kill -9`` shows as dead at once.
A session on another host is never dead: its process cannot be probed from
here (``process_alive`` is null).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # kept out of the import: the status line loads this without pydantic
    from .models import Health, Relationship, SessionRecord, SessionView, Status
    from .probe import ProcessProbe


class RecordLike(Protocol):
    """What the rules read of a record: a :class:`~.models.SessionRecord`, or any
    object with these attributes (datetimes aware UTC)."""

    session_id: str
    host: str | None
    pid: int | None
    pid_started_at: datetime | None
    client_pid: int | None
    started_at: datetime | None
    last_heartbeat: datetime | None
    last_call_at: datetime | None
    ended_at: datetime | None


HEALTHY_BELOW_S = 60.0
WARNING_BELOW_S = 180.0


@dataclass(frozen=True)
class Observer:
    """Who is looking: the caller's session id, host and MCP client pid."""

    session_id: str | None
    host: str
    client_pid: int | None = None
    previous_session: str | None = None


@dataclass(frozen=True)
class Thresholds:
    """Seconds after which a session counts as stale, or idle."""

    stale_after: float = 300.0
    idle_after: float = 600.0


@dataclass(frozen=True)
class Liveness:
    """The computed part of a session view."""

    status: Status
    health: Health
    heartbeat_age_s: float | None
    seconds_until_stale: float
    clock_skew_s: float | None
    process_alive: bool | None
    relationship: Relationship


def age_seconds(now: datetime, then: datetime | None) -> tuple[float | None, float | None]:
    """Return ``(age, skew)`` in seconds: age is never negative; skew is set when
    ``then`` lies in the future of ``now`` (another host's clock ahead)."""
    if then is None:
        return None, None
    delta = (now - then).total_seconds()
    if delta < 0:
        return 0.0, -delta
    return delta, None


def health_of(heartbeat_age_s: float | None) -> Health:
    """healthy below 60 s, warning below 180 s, critical otherwise (or never beaten)."""
    if heartbeat_age_s is None:
        return "critical"
    if heartbeat_age_s < HEALTHY_BELOW_S:
        return "healthy"
    if heartbeat_age_s < WARNING_BELOW_S:
        return "warning"
    return "critical"


def process_alive(record: RecordLike, observer: Observer, probe: ProcessProbe) -> bool | None:
    """True/False for a record of this host with a pid; None when it cannot be probed."""
    if record.host != observer.host or record.pid is None:
        return None
    return not probe(record.pid, record.pid_started_at).dead


def assess(
    record: RecordLike,
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds = Thresholds(),
) -> Liveness:
    """Classify ``record`` as seen by ``observer`` at ``now`` (see module doc)."""
    hb_age, skew = age_seconds(now, record.last_heartbeat)
    call_age, _ = age_seconds(now, record.last_call_at or record.started_at)
    alive = None if record.ended_at is not None else process_alive(record, observer, probe)
    stale = hb_age is None or hb_age >= thresholds.stale_after
    status: Status
    if record.ended_at is not None:
        status = "ended"
    elif alive is False:
        status = "dead"
    elif stale:
        status = "stale"
    elif call_age is not None and call_age >= thresholds.idle_after:
        status = "idle"
    else:
        status = "active"
    until_stale = 0.0 if hb_age is None else max(0.0, thresholds.stale_after - hb_age)
    return Liveness(
        status=status,
        health=health_of(hb_age),
        heartbeat_age_s=None if hb_age is None else round(hb_age, 3),
        seconds_until_stale=round(until_stale, 3),
        clock_skew_s=None if skew is None else round(skew, 3),
        process_alive=alive,
        relationship=relationship_of(record, status, alive, observer),
    )


def relationship_of(
    record: RecordLike, status: Status, alive: bool | None, observer: Observer
) -> Relationship:
    """How ``record`` relates to the observer.

    ``same_conversation`` is another record of the same MCP client process on
    this host (a reconnect under a new id) or the session the observer continues
    (its ``previous_session``). ``ended`` is an addition to the contract's list,
    for sessions that closed cleanly.
    """
    if record.session_id == observer.session_id:
        return "self"
    if status == "ended":
        return "ended"
    if status == "dead":
        return "dead"
    same_client = (
        observer.client_pid is not None
        and record.client_pid == observer.client_pid
        and record.host == observer.host
    )
    if same_client or record.session_id == observer.previous_session:
        return "same_conversation"
    if status == "stale":
        return "stale_remote" if alive is None else "stale_alive"
    return "other_active"


def view_of(record: SessionRecord, liveness: Liveness) -> SessionView:
    """Build the tools' session view from a record and its liveness."""
    from .models import SessionView

    return SessionView(
        session_id=record.session_id,
        plan_id=record.plan_id,
        branch=record.branch,
        cwd=record.cwd,
        worktree=record.worktree,
        role=record.role,
        entrypoint=record.entrypoint,
        agent_version=record.agent_version,
        started_at=record.started_at,
        last_heartbeat=record.last_heartbeat,
        last_activity=record.last_activity,
        last_call_at=record.last_call_at,
        previous_session=record.previous_session,
        fencing_token=record.fencing_token,
        claimed_at=record.claimed_at,
        host=record.host,
        pid=record.pid,
        tags=record.tags,
        status=liveness.status,
        health=liveness.health,
        heartbeat_age_s=liveness.heartbeat_age_s,
        seconds_until_stale=liveness.seconds_until_stale,
        clock_skew_s=liveness.clock_skew_s,
        relationship=liveness.relationship,
        process_alive=liveness.process_alive,
        ended_at=record.ended_at,
        end_reason=record.end_reason,
    )


__all__ = [
    "HEALTHY_BELOW_S",
    "WARNING_BELOW_S",
    "Liveness",
    "Observer",
    "RecordLike",
    "Thresholds",
    "age_seconds",
    "assess",
    "health_of",
    "process_alive",
    "relationship_of",
    "view_of",
]
