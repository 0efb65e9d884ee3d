"""Status, health and relationship of a session: pure functions.

Inputs are a record, the reader's clock reading, the reader's identity and a
process probe; nothing here touches the disk. The rules (design contract):

* ``ended``  — ``ended_at`` is set (a clean end).
* ``dead``   — same host, same kernel boot and same PID namespace as the
  reader, and the probe proves the process gone (no such PID, a zombie, or a
  PID reused by a process with another start time).
* ``stale``  — no heartbeat for ``stale_after`` seconds, or a heartbeat stamped
  more than ``stale_after`` seconds in the reader's future (and not proven dead).
* ``idle``   — heartbeat fresh but no tool call for ``idle_after`` seconds.
* ``active`` — otherwise.

Proof of death outranks a fresh heartbeat: a ``kill -9`` shows as dead at once.

**Remote** means the reader cannot name the recorded process: another host,
another boot (a reboot, or another machine with the same hostname), another
PID namespace (a container or ``unshare --pid`` with the same hostname), or a
record that does not say (no ``boot_id``/``pid_namespace``: written by a
version before these fields, or where ``/proc`` did not give them). A remote
session is never dead (``process_alive`` is null): it goes stale by time only,
and its claim is taken over only with ``force``. A process the reader may not
see (``EPERM``, ``hidepid``) is alive (``probe``).

**Ages.** On the reader's own boot (same ``boot_id``, host and time namespace)
a heartbeat's age is the reader's ``CLOCK_BOOTTIME`` minus the record's
``last_heartbeat_boottime``, so stepping the wall clock moves no age. Across
boots and hosts (or for records without it) the age is UTC now minus
``last_heartbeat``; a heartbeat in the reader's future has age 0 and its skew
is reported as ``clock_skew_s``.
"""

from __future__ import annotations

import math
from collections import namedtuple

from .clock import boottime_now

TYPE_CHECKING = False
if TYPE_CHECKING:  # kept out of the import: the status line loads this without pydantic or typing
    from datetime import datetime
    from typing import Protocol

    from .models import Health, Relationship, SessionRecord, SessionView, Status
    from .process import ProcessProbe
else:  # a typing Protocol for type checkers, a plain base class at run time
    Protocol = object


class RecordLike(Protocol):
    """What the rules read of a record: a :class:`~.models.SessionRecord`, or any
    object with these attributes (datetimes aware UTC)."""

    session_id: str
    host: str | None
    pid: int | None
    pid_started_at: datetime | None
    pid_start_ticks: int | None
    client_pid: int | None
    started_at: datetime | None
    last_heartbeat: datetime | None
    last_call_at: datetime | None
    ended_at: datetime | None
    boot_id: str | None
    pid_namespace: str | None
    time_namespace: str | None
    last_heartbeat_boottime: float | None


HEALTHY_BELOW_S = 60.0
WARNING_BELOW_S = 180.0


class Observer(
    namedtuple(
        "Observer",
        (
            "session_id",
            "host",
            "client_pid",
            "previous_session",
            "boot_id",
            "pid_namespace",
            "time_namespace",
            "boottime",
        ),
        defaults=(None, None, None, None, None, boottime_now),
    )
):
    """Who is looking: the caller's session id (``str`` or None), host (``str``)
    and MCP client pid (``int`` or None), the session it continues
    (``previous_session``), and the process space and clock it reads from.
    Immutable (a named tuple; ``_replace`` for a changed copy).

    ``boot_id``, ``pid_namespace`` and ``time_namespace`` are the reader's
    process space (None: unknown, so no record can be proven dead by it; the
    host layer fills them: :func:`~mcp_server_heartbeat.host.identity.observer_here`);
    ``boottime`` is the reader's
    ``CLOCK_BOOTTIME`` in seconds, or None to judge every age by UTC (a reader
    whose wall clock is injected and whose boot-time clock is not).
    """

    __slots__ = ()


class Thresholds(namedtuple("Thresholds", ("stale_after", "idle_after"), defaults=(300.0, 600.0))):
    """Seconds (``float``) after which a session counts as stale (``stale_after``,
    default 300), or idle (``idle_after``, default 600). Immutable (a named tuple)."""

    __slots__ = ()


DEFAULT_THRESHOLDS = Thresholds()
"""The design's defaults: stale after 300 s, idle after 600 s."""


class Liveness(
    namedtuple(
        "Liveness",
        (
            "status",
            "health",
            "heartbeat_age_s",
            "seconds_until_stale",
            "clock_skew_s",
            "process_alive",
            "relationship",
        ),
    )
):
    """The computed part of a session view (immutable; a named tuple, built once
    per session of a listing).

    Attributes:
        status: :data:`~.models.Status`.
        health: :data:`~.models.Health`.
        heartbeat_age_s: seconds (float), or None when never beaten.
        seconds_until_stale: seconds (float).
        clock_skew_s: seconds the heartbeat lies in the reader's future (float), or None.
        process_alive: bool, or None (remote: its process cannot be named from here).
        relationship: :data:`~.models.Relationship`.
    """

    __slots__ = ()


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


def same_process_space(record: RecordLike, observer: Observer) -> bool:
    """True when ``record.pid`` names a process the observer can probe: host,
    kernel boot and PID namespace are all known and all the observer's own."""
    return (
        record.host is not None
        and record.host == observer.host
        and record.boot_id is not None
        and record.boot_id == observer.boot_id
        and record.pid_namespace is not None
        and record.pid_namespace == observer.pid_namespace
    )


def process_alive(record: RecordLike, observer: Observer, probe: ProcessProbe) -> bool | None:
    """True/False for a record of the observer's process space (host, boot, PID
    namespace) with a pid; None (remote) when its process cannot be named from here."""
    if record.pid is None or not same_process_space(record, observer):
        return None
    return not probe(record.pid, record.pid_started_at, record.pid_start_ticks).dead


def same_boot_clock(record: RecordLike, observer: Observer) -> bool:
    """True when the record's ``last_heartbeat_boottime`` and the observer's
    ``boottime`` read one clock: same host, boot and time namespace."""
    return (
        observer.boottime is not None
        and record.last_heartbeat_boottime is not None
        and record.host == observer.host
        and record.boot_id is not None
        and record.boot_id == observer.boot_id
        and record.time_namespace == observer.time_namespace
    )


def heartbeat_age(
    record: RecordLike, now: datetime, observer: Observer
) -> tuple[float | None, float | None]:
    """``(age, skew)`` of the record's last heartbeat, in seconds (module doc:
    boot-time clock on the observer's boot, else UTC). Age is never negative;
    skew is set when the heartbeat lies in the reader's future."""
    return _heartbeat_age(record, now, observer, same_boot_clock(record, observer))


def _heartbeat_age(
    record: RecordLike, now: datetime, observer: Observer, same_clock: bool
) -> tuple[float | None, float | None]:
    if same_clock:
        assert observer.boottime is not None and record.last_heartbeat_boottime is not None
        delta = observer.boottime() - record.last_heartbeat_boottime
        if math.isfinite(delta):
            return (0.0, -delta) if delta < 0 else (delta, None)
    return age_seconds(now, record.last_heartbeat)


def _call_age(
    record: RecordLike, now: datetime, same_clock: bool, hb_age: float | None
) -> float | None:
    """Seconds since the last tool call (drives ``idle``). On the observer's boot
    (``same_clock``: :func:`same_boot_clock`) it is the heartbeat's step-free
    age plus how long before that heartbeat the call was, both stamped by the
    writer's one clock; else UTC."""
    called = record.last_call_at or record.started_at
    if called is None:
        return None
    if same_clock and hb_age is not None and record.last_heartbeat is not None:
        return hb_age + max(0.0, (record.last_heartbeat - called).total_seconds())
    return age_seconds(now, called)[0]


def is_stale(age: float | None, skew: float | None, thresholds: Thresholds) -> bool:
    """No heartbeat, one ``stale_after`` seconds old, or one stamped more than
    ``stale_after`` seconds in the reader's future (its writer's clock cannot be
    trusted to say it is fresh)."""
    return (
        age is None
        or age >= thresholds.stale_after
        or (skew is not None and skew > thresholds.stale_after)
    )


def may_adopt(record: RecordLike, observer: Observer, probe: ProcessProbe) -> bool:
    """Whether a process starting under ``record.session_id`` may adopt the record
    (resume, ``/mcp`` reconnect) rather than run under a new id.

    Yes when the record ended, names no process, names a process proven dead
    (rules of :func:`process_alive`), or names the observer's own MCP client (a
    record the SessionStart hook wrote for this client: pid = client_pid =
    the observer's ``client_pid``, alive in the observer's process space).
    No otherwise: a live process, and a remote or unprovable one however stale
    (another host, boot or namespace, or a record of an earlier version) —
    a stale heartbeat is not proof of death, and adopting a live process's
    record would let two processes hold one claim.
    """
    if record.ended_at is not None or record.pid is None:
        return True
    alive = process_alive(record, observer, probe)
    if alive is False:
        return True
    return (
        alive is True
        and observer.client_pid is not None
        and record.pid == observer.client_pid
        and record.client_pid == observer.client_pid
    )


def assess(
    record: RecordLike,
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Liveness:
    """Classify ``record`` as seen by ``observer`` at ``now`` (see module doc)."""
    same_clock = same_boot_clock(record, observer)
    hb_age, skew = _heartbeat_age(record, now, observer, same_clock)
    ended = record.ended_at is not None
    call_age = None if ended else _call_age(record, now, same_clock, hb_age)
    alive = None if ended else process_alive(record, observer, probe)
    stale = is_stale(hb_age, skew, thresholds)
    status: Status
    if ended:
        status = "ended"
    elif alive is False:
        status = "dead"
    elif stale:
        status = "stale"
    elif call_age is not None and call_age >= thresholds.idle_after:
        status = "idle"
    else:
        status = "active"
    until_stale = 0.0 if stale or hb_age is None else max(0.0, thresholds.stale_after - hb_age)
    return Liveness(
        status=status,
        health="critical" if stale and skew is not None else health_of(hb_age),
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
        and record.boot_id in (None, observer.boot_id)  # a pid of another boot or
        and record.pid_namespace in (None, observer.pid_namespace)  # namespace is another
    )
    if same_client or record.session_id == observer.previous_session:
        return "same_conversation"
    if status == "stale":
        return "stale_remote" if alive is None else "stale_alive"
    return "other_active"


_view_model: type[SessionView] | None = None


def view_of(record: SessionRecord, liveness: Liveness) -> SessionView:
    """Build the tools' session view from a record and its liveness.

    ``record`` is a validated :class:`~.models.SessionRecord` and ``liveness``
    comes from :func:`assess`, so the view is built from them without a second
    validation (:meth:`~.models.SessionView.of_checked`, same result)."""
    global _view_model
    if _view_model is None:  # imported on first use: the status line never builds views
        from .models import SessionView

        _view_model = SessionView
    return _view_model.of_checked(
        {
            "session_id": record.session_id,
            "plan_id": record.plan_id,
            "branch": record.branch,
            "cwd": record.cwd,
            "worktree": record.worktree,
            "role": record.role,
            "entrypoint": record.entrypoint,
            "agent_version": record.agent_version,
            "started_at": record.started_at,
            "last_heartbeat": record.last_heartbeat,
            "last_activity": record.last_activity,
            "last_call_at": record.last_call_at,
            "previous_session": record.previous_session,
            "fencing_token": record.fencing_token,
            "claimed_at": record.claimed_at,
            "host": record.host,
            "pid": record.pid,
            "tags": record.tags,
            "status": liveness.status,
            "health": liveness.health,
            "heartbeat_age_s": liveness.heartbeat_age_s,
            "seconds_until_stale": liveness.seconds_until_stale,
            "clock_skew_s": liveness.clock_skew_s,
            "relationship": liveness.relationship,
            "process_alive": liveness.process_alive,
            "ended_at": record.ended_at,
            "end_reason": record.end_reason,
        }
    )


__all__ = [
    "DEFAULT_THRESHOLDS",
    "HEALTHY_BELOW_S",
    "WARNING_BELOW_S",
    "Liveness",
    "Observer",
    "RecordLike",
    "Thresholds",
    "age_seconds",
    "assess",
    "health_of",
    "heartbeat_age",
    "is_stale",
    "may_adopt",
    "process_alive",
    "relationship_of",
    "same_boot_clock",
    "same_process_space",
    "view_of",
]
