"""The one reader of "sessions with their liveness".

Records, the reader (:class:`~mcp_server_heartbeat.domain.liveness.Observer`),
its process probe, the thresholds and its "now" go in; session views (or, for
the status line's light path, statuses) come out, filtered the same way for
every caller: the ``list_sessions`` tool, ``status``/``snapshot`` (observe),
the SessionStart hook and the status line. Classification is
:func:`~mcp_server_heartbeat.domain.liveness.assess` (design "Terms"); this
module adds which sessions count as live, which are shown, and in what order.

Reads only (design invariant 6). Importing this module does not load pydantic:
the status line classifies plain records (``LightRecord``) through
:func:`classify` and :func:`is_live` and stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from ..domain.errors import InvalidInputError
from ..domain.liveness import (
    Liveness,
    Observer,
    RecordLike,
    Thresholds,
    assess,
    heartbeat_age,
    is_stale,
    view_of,
)
from ..domain.process import MemoProbe

TYPE_CHECKING = False
if TYPE_CHECKING:  # kept out of the import: the status line loads this without pydantic or typing
    from typing import TypeVar

    from ..domain.models import SessionRecord, SessionView, Status
    from ..host.probe import ProcessProbe

    _R = TypeVar("_R", bound=RecordLike)

STATUSES: tuple[Status, ...] = ("active", "idle", "stale", "dead", "ended")
"""Every status, in display order (live first)."""
LIVE: tuple[Status, ...] = ("active", "idle")
"""Statuses of a live session: fresh heartbeat, not ended, not proven dead."""
WORKING_ELSEWHERE = ("other_active", "stale_alive", "stale_remote")
"""Relationships of the other sessions a session is told about at its start."""

_STATUS_ORDER = {status: index for index, status in enumerate(STATUSES)}
_NEVER = datetime.min.replace(tzinfo=UTC)


def classify(
    record: RecordLike,
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
) -> Liveness:
    """The liveness of ``record`` as ``observer`` sees it at ``now`` (aware UTC):
    status, health, ages in seconds, ``process_alive``, relationship
    (:func:`~mcp_server_heartbeat.domain.liveness.assess`)."""
    return assess(record, now, observer, probe, thresholds)


def is_live(
    record: RecordLike,
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
) -> bool:
    """True when :func:`classify` says active or idle. An ended record, or one
    stale by its heartbeat alone, is not live and its process is not probed
    (the same answer, cheaper: proof of death only turns live into dead)."""
    if record.ended_at is not None:
        return False
    if is_stale(*heartbeat_age(record, now, observer), thresholds):
        return False
    return classify(record, now, observer, probe, thresholds).status in LIVE


def view(
    record: SessionRecord,
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
) -> SessionView:
    """The session view of ``record``: the record with its :func:`classify`."""
    return view_of(record, classify(record, now, observer, probe, thresholds))


def check_filters(status: str | None, plan_id: str | None, branch: str | None) -> None:
    """Refuse filters that cannot match: a status outside :data:`STATUSES`, a
    branch that is not a label of 256 characters or less (a plan id is checked at
    the edge: :class:`~mcp_server_heartbeat.domain.ids.PlanId`).

    Raises:
        InvalidInputError: naming the value given and what is accepted.
    """
    if status is not None and status not in STATUSES:
        raise InvalidInputError(
            f"status {status!r} is not accepted: use one of {', '.join(STATUSES)}"
        )
    if branch is not None:
        from ..domain.validation import validate_label  # the status line validates nothing

        validate_label(branch, "branch", 256)


def sessions_with_liveness(
    records: Iterable[SessionRecord],
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
    *,
    own: SessionRecord | None = None,
    status: str | None = None,
    plan_id: str | None = None,
    branch: str | None = None,
    include_ended: bool = False,
) -> list[SessionView]:
    """The views of ``records`` as ``observer`` sees them at ``now``, filtered.

    Args:
        own: the reader's own record as it holds it in memory; it replaces the
            stored record of the same id (what the next write will store).
        status, plan_id, branch: keep only views with that value (AND).
        include_ended: keep ended sessions; they are left out otherwise,
            unless ``status="ended"`` asks for them.

    Each process is probed once per call (:class:`~mcp_server_heartbeat.domain.process.MemoProbe`),
    ended records not at all; the observer's boot-time clock is read once per
    call, like ``now`` (every age of one listing is measured from one instant).

    Returns:
        Views in the order of ``records`` (see :func:`by_status` to sort).
    """
    from ..domain.gcpause import collection_paused  # threading: not for the status line

    with collection_paused():
        return _views(
            records, now, at_one_instant(observer), MemoProbe(probe), thresholds,
            own, status, plan_id, branch, include_ended,
        )  # fmt: skip


def _views(
    records: Iterable[SessionRecord],
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
    own: SessionRecord | None,
    status: str | None,
    plan_id: str | None,
    branch: str | None,
    include_ended: bool,
) -> list[SessionView]:
    views = []
    for record in records:
        if own is not None and record.session_id == own.session_id:
            record = own
        # Filters on stored fields first: a record left out is neither probed nor
        # built into a view (status "ended" is exactly "ended_at is set").
        if status is None and record.ended_at is not None and not include_ended:
            continue
        if plan_id is not None and record.plan_id != plan_id:
            continue
        if branch is not None and record.branch != branch:
            continue
        liveness = classify(record, now, observer, probe, thresholds)
        if status is not None and liveness.status != status:
            continue
        views.append(view_of(record, liveness))
    return views


def at_one_instant(observer: Observer) -> Observer:
    """``observer`` with its boot-time clock read once: every call of the copy's
    ``boottime`` answers that one reading (seconds). For a listing, whose wall
    clock ``now`` is read once too; the same observer unchanged when it has no
    boot-time clock."""
    if observer.boottime is None:
        return observer
    reading = observer.boottime()
    return observer._replace(boottime=lambda: reading)


def by_status(views: Sequence[SessionView]) -> list[SessionView]:
    """``views`` ordered by status (active, idle, stale, dead, ended), then most
    recent heartbeat first, then session id."""

    def order(found: SessionView) -> tuple[int, float, str]:
        age = found.heartbeat_age_s if found.heartbeat_age_s is not None else float("inf")
        return _STATUS_ORDER[found.status], age, found.session_id

    return sorted(views, key=order)


def working_elsewhere(views: Iterable[SessionView], session_id: str) -> list[SessionView]:
    """The other sessions a session starting as ``session_id`` is told about:
    not itself, not ended, dead or of its own conversation (relationship
    other_active, stale_alive or stale_remote)."""
    return [
        found
        for found in views
        if found.relationship in WORKING_ELSEWHERE and found.session_id != session_id
    ]


def conversation_server(
    records: Iterable[_R],
    ancestors: frozenset[int],
    host: str,
    alive: Callable[[_R], bool],
    exclude: str | None = None,
) -> _R | None:
    """The live server of this client: the record whose client process is one of
    ``ancestors`` (the caller's ancestor pids on ``host``), whose own process is
    not one of them (a record the start hook wrote is owned by the client
    itself), not ended and ``alive`` (the caller's liveness rule: not proven
    dead, or active/idle); the newest heartbeat wins. None when there is none.

    One rule for every caller that must find "this conversation's MCP server"
    without being told its id: the SessionStart hook (after ``/clear``), the
    status line, and the git hooks (a commit made from the agent's shell).
    ``exclude`` leaves one session id out (the caller's own).
    """
    if not ancestors:
        return None
    candidates = [
        record
        for record in records
        if record.session_id != exclude
        and record.ended_at is None
        and record.host == host
        and record.client_pid is not None
        and record.client_pid in ancestors
        and record.pid not in ancestors
        and alive(record)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.last_heartbeat is not None, r.last_heartbeat or _NEVER))


def continuation_id(original: str, n: int) -> str:
    """The ``n``-th id that continues ``original`` (``n`` >= 2): ``<original>-<n>``,
    the original shortened so the result stays a valid id (at most
    :data:`~.validation.ID_MAX_CHARS` characters). A server whose id is held by a
    live process runs under the first such id that is free (``session.starting``)."""
    from ..domain.validation import ID_MAX_CHARS

    suffix = f"-{n}"
    return original[: ID_MAX_CHARS - len(suffix)] + suffix


def _continues(candidate: str, original: str) -> bool:
    """True when ``candidate`` has the form :func:`continuation_id` gives ``original``."""
    number = candidate.rpartition("-")[2]
    if not number.isdigit() or int(number) < 2:
        return False
    return continuation_id(original, int(number)) == candidate


def continuation_ids(pairs: Iterable[tuple[str, str | None]], session_id: str) -> set[str]:
    """``session_id`` and the ids that continue it, transitively, from ``(session_id,
    previous_session)`` pairs of the store's records: a record continues another
    when its ``previous_session`` names it and its id is a :func:`continuation_id`
    of it. (A takeover also sets the new holder's ``previous_session`` to the
    displaced session; that record is no continuation: its id does not extend
    the old one.) Used by every reader that starts from a conversation id: the
    git hooks (``HEARTBEAT_SESSION_ID``) and the loss hooks."""
    links = [(sid, previous) for sid, previous in pairs if previous is not None]
    found = {session_id}
    frontier = [session_id]
    while frontier:
        current = frontier.pop()
        for sid, previous in links:
            if previous == current and sid not in found and _continues(sid, current):
                found.add(sid)
                frontier.append(sid)
    return found


__all__ = [
    "LIVE",
    "STATUSES",
    "WORKING_ELSEWHERE",
    "at_one_instant",
    "by_status",
    "check_filters",
    "classify",
    "continuation_id",
    "continuation_ids",
    "conversation_server",
    "is_live",
    "sessions_with_liveness",
    "view",
    "working_elsewhere",
]
