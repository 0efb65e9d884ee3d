"""The read side for people and resources: snapshots, the Session Trace, a plan's
history, and garbage collection of old records. No MCP here.

Everything except :func:`collect_garbage` only reads the store: nothing is
created, modified or deleted (design invariant 6), and a missing heartbeat
directory reads as an empty one. Sessions with their liveness come
from the one reader (:mod:`.readers`), with the reader's clock and process
probe, exactly as ``list_sessions`` gets them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from ..domain.clock import format_duration
from ..domain.errors import InvalidInputError
from ..domain.liveness import Observer, Thresholds
from ..domain.models import (
    TRANSITIONS,
    ClaimRecord,
    Event,
    SessionRecord,
    SessionView,
    Unreadable,
    UtcDatetime,
)
from ..host.identity import observer_here
from ..host.probe import ProcessProbe
from ..store import Store
from .readers import by_status, classify, sessions_with_liveness
from .shortids import short_id, short_ids

BUILT_ON_USE = ConfigDict(defer_build=True)
"""The report models are built on first use, not when a server imports them."""

RECENT_EVENTS = 20
DEFAULT_GC_OLDER_THAN_S = 7 * 24 * 3600.0


def observer_from_env(env: Mapping[str, str], session_id: str | None = None) -> Observer:
    """Who is looking from a command line: this host, and the session id of the
    Claude Code session it runs in (``--session-id`` or ``CLAUDE_CODE_SESSION_ID``),
    if any, so that session shows as ``self``."""
    return observer_here(session_id or env.get("CLAUDE_CODE_SESSION_ID") or None)


# -- snapshot ------------------------------------------------------------------


class ClaimView(BaseModel):
    """A plan that is held right now: its holder, fencing token and since when (UTC)."""

    model_config = BUILT_ON_USE

    plan_id: str
    holder: str
    fencing_token: int
    since: UtcDatetime | None = Field(description="When the holder claimed it (UTC).")
    held_for_s: float | None = Field(description="Seconds since the claim.")
    acquired_by: str | None = Field(description="claim | takeover")
    takeover_reason: str | None
    holder_status: str | None = Field(
        description="The holder's status (active | idle | stale | dead | ended), "
        "or null when its record is gone."
    )


class Snapshot(BaseModel):
    """Every session (with liveness) and every held claim, read at one instant."""

    model_config = BUILT_ON_USE

    directory: str
    exists: bool = Field(description="False when the heartbeat directory does not exist yet.")
    generated_at: UtcDatetime
    stale_after_s: float
    sessions: list[SessionView]
    claims: list[ClaimView]
    unreadable: list[Unreadable]


def read_snapshot(
    store: Store,
    now: datetime,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
    include_ended: bool = False,
) -> Snapshot:
    """Read the sessions and the held claims.

    Sessions are ordered by status (active, idle, stale, dead, ended), then most
    recent heartbeat first. Ended sessions are left out unless
    ``include_ended``. Claims are the ledgers with a holder, by plan id.

    Raises:
        StoreError: the directory exists but cannot be listed.
    """
    records, unreadable = store.list_sessions()
    views = sessions_with_liveness(records, now, observer, probe, thresholds, include_ended=True)
    by_id = {view.session_id: view for view in views}
    if not include_ended:
        views = [view for view in views if view.status != "ended"]
    views = by_status(views)
    claims = [
        _claim_view(ledger, now, by_id.get(ledger.holder))
        for ledger in store.iter_claims()
        if ledger.holder is not None
    ]
    return Snapshot(
        directory=store.location,
        exists=store.exists(),
        generated_at=now,
        stale_after_s=thresholds.stale_after,
        sessions=views,
        claims=claims,
        unreadable=unreadable,
    )


def _claim_view(ledger: ClaimRecord, now: datetime, holder: SessionView | None) -> ClaimView:
    assert ledger.holder is not None
    held = None if ledger.claimed_at is None else (now - ledger.claimed_at).total_seconds()
    return ClaimView(
        plan_id=ledger.plan_id,
        holder=ledger.holder,
        fencing_token=ledger.fencing_token,
        since=ledger.claimed_at,
        held_for_s=None if held is None else round(max(0.0, held), 3),
        acquired_by=ledger.acquired_by,
        takeover_reason=ledger.takeover_reason,
        holder_status=None if holder is None else holder.status,
    )


# -- plans ---------------------------------------------------------------------


class PlanReport(BaseModel):
    """A plan: its holder now, its fencing token, its transitions and recent events."""

    model_config = BUILT_ON_USE

    plan_id: str
    claimed: bool = Field(description="True when a session holds the plan now.")
    holder: str | None
    holder_status: str | None
    fencing_token: int | None = Field(
        description="The last token issued for the plan (the holder's, while held)."
    )
    claimed_at: UtcDatetime | None
    released_at: UtcDatetime | None
    transitions: int = Field(
        description="Events that changed the holder (granted, taken over, released) "
        "within the event log's retention."
    )
    events: list[Event] = Field(description="The most recent events of the plan, oldest first.")


def plan_events(events: Iterable[Event], plan_id: str) -> list[Event]:
    """The events of ``plan_id``, in log order (oldest first)."""
    return [event for event in events if event.plan_id == plan_id]


def plan_report(
    store: Store,
    plan_id: str,
    status_of: Callable[[SessionRecord], str],
    recent: int = RECENT_EVENTS,
) -> PlanReport:
    """Describe one plan from its claim ledger and the event log.

    Args:
        status_of: the status of the holder's record as the reader sees it
            (e.g. ``assess(record, now, observer, probe, thresholds).status``).
        recent: how many of the latest events to include.

    Raises:
        StoreError: the plan's ledger exists but is unreadable.
    """
    ledger = store.read_claim(plan_id)
    events = store.plan_history(plan_id, recent) if recent > 0 else []
    holder_status = None
    if ledger is not None and ledger.holder is not None:
        record = store.read_session(ledger.holder)
        if record is not None:
            holder_status = status_of(record)
    return PlanReport(
        plan_id=plan_id,
        claimed=ledger is not None and ledger.holder is not None,
        holder=None if ledger is None else ledger.holder,
        holder_status=holder_status,
        fencing_token=None if ledger is None else ledger.fencing_token,
        claimed_at=None if ledger is None else ledger.claimed_at,
        released_at=None if ledger is None else ledger.released_at,
        transitions=store.count_plan_events(plan_id, TRANSITIONS),
        events=events,
    )


# -- the Session Trace ---------------------------------------------------------


class TraceRow(BaseModel):
    """One session of the trace; ``active_s`` = last heartbeat - started, in seconds."""

    model_config = BUILT_ON_USE

    session_id: str
    short_id: str = Field(description="The shortest unique prefix (8 characters or more).")
    worktree: str | None = None
    entrypoint: str | None
    role: str | None
    started_at: UtcDatetime | None
    last_heartbeat: UtcDatetime | None
    active_s: float
    plan_id: str | None
    ended: bool


class Trace(BaseModel):
    """The Session Trace of a branch (seed: session-tracking codex, section 7).

    ``cumulative_active_s`` is the sum over the sessions of (last heartbeat -
    started), in seconds; a session missing either time counts 0.
    """

    model_config = BUILT_ON_USE

    branch: str
    worktrees: list[str] = Field(
        description="The distinct worktrees (else working directories), sorted."
    )
    sessions: list[TraceRow] = Field(description="Ordered by start time.")
    cumulative_active_s: float


def build_trace(records: Iterable[SessionRecord], branch: str) -> Trace:
    """The Session Trace of ``branch`` from session records (ended ones included)."""
    rows: list[TraceRow] = []
    worktrees: set[str] = set()
    records = [record for record in records if record.branch == branch]
    shorten = short_ids(record.session_id for record in records)
    for record in records:
        if record.worktree or record.cwd:
            worktrees.add(record.worktree or record.cwd or "")
        active = 0.0
        if record.started_at is not None and record.last_heartbeat is not None:
            active = max(0.0, (record.last_heartbeat - record.started_at).total_seconds())
        rows.append(
            TraceRow(
                session_id=record.session_id,
                short_id=shorten(record.session_id),
                worktree=record.worktree,
                entrypoint=record.entrypoint,
                role=record.role,
                started_at=record.started_at,
                last_heartbeat=record.last_heartbeat,
                active_s=round(active, 3),
                plan_id=record.plan_id,
                ended=record.ended_at is not None,
            )
        )
    rows.sort(key=lambda row: (row.started_at is None, row.started_at or 0, row.session_id))
    return Trace(
        branch=branch,
        worktrees=sorted(worktrees),
        sessions=rows,
        cumulative_active_s=round(sum(row.active_s for row in rows), 3),
    )


# -- garbage collection --------------------------------------------------------


class Removed(BaseModel):
    """A session record ``gc`` removed (or would remove, on a dry run)."""

    model_config = BUILT_ON_USE

    session_id: str
    status: str = Field(description="ended | dead")
    last_seen: UtcDatetime = Field(description="ended_at, else last heartbeat, else start (UTC).")
    age_s: float


class GcReport(BaseModel):
    """What ``gc`` did: removed records, events dropped, and what it kept."""

    model_config = BUILT_ON_USE

    dry_run: bool
    older_than_s: float
    cutoff: UtcDatetime
    removed: list[Removed]
    kept: int = Field(description="Session records left in place.")
    events_dropped: int
    temp_files_removed: list[str] = Field(
        default_factory=list,
        description="Leftovers of writes killed before their rename (never visible to readers).",
    )


TEMP_FILE_GRACE_S = 60.0
"""gc leaves temp files younger than this (seconds), whatever ``--older-than`` says."""


def collect_garbage(
    store: Store,
    now: datetime,
    older_than_s: float,
    observer: Observer,
    probe: ProcessProbe,
    thresholds: Thresholds,
    dry_run: bool = False,
) -> GcReport:
    """Remove records of ended and dead sessions last seen more than
    ``older_than_s`` seconds ago, and events older than that.

    Safe by construction: it judges every record inside one store transaction
    and deletes there, so a session adopted or revived meanwhile is kept. It never
    removes a session that is active, idle or stale (not proven dead), nor one
    a claim ledger still names as holder, and it never touches ``claims/``
    ledgers (the fencing-token high-water marks) or unreadable files. It also
    removes temp files of writes killed before their rename.

    Raises:
        InvalidInputError: ``older_than_s`` is negative.
        StoreError, StoreBusyError: nothing or only part was removed; rerun.
    """
    if older_than_s < 0:
        raise InvalidInputError("older-than must be 0 or more seconds")
    cutoff = now - timedelta(seconds=older_than_s)
    removed: list[Removed] = []
    kept = 0
    # Events first: if pruning fails (disk full), nothing has been removed yet.
    dropped = store.prune_events(cutoff, dry_run=dry_run)
    with store.transaction() as tx:
        records, _ = store.list_sessions()
        holders = {ledger.holder for ledger in store.iter_claims() if ledger.holder}
        for record in records:
            status = classify(record, now, observer, probe, thresholds).status
            last_seen = record.ended_at or record.last_heartbeat or record.started_at
            if (
                status not in ("ended", "dead")
                or record.session_id in holders
                or last_seen is None
                or last_seen >= cutoff
            ):
                kept += 1
                continue
            if not dry_run:
                tx.delete_session(record.session_id)
            removed.append(
                Removed(
                    session_id=record.session_id,
                    status=status,
                    last_seen=last_seen,
                    age_s=round((now - last_seen).total_seconds(), 3),
                )
            )
    # A write in flight holds the store's lock, which pruning takes too; the extra
    # minute is for safety.
    debris = store.prune_temp_files(
        min(cutoff, now - timedelta(seconds=TEMP_FILE_GRACE_S)), dry_run=dry_run
    )
    return GcReport(
        dry_run=dry_run,
        older_than_s=older_than_s,
        cutoff=cutoff,
        removed=removed,
        kept=kept,
        events_dropped=dropped,
        temp_files_removed=debris,
    )


_DURATION_RE = re.compile(r"(?:(\d+(?:\.\d+)?)([wdhms]))", re.IGNORECASE)
_UNIT_S = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Parse ``7d``, ``12h``, ``1h30m``, ``90s``, ``2w`` or a plain number of seconds.

    Returns seconds. Raises:
        InvalidInputError: anything else (a negative number, an unknown unit).
    """
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds >= 0 and seconds != float("inf"):
            return seconds
        raise InvalidInputError(f"duration {text!r} is not accepted: give 0 or more seconds")
    parts = _DURATION_RE.findall(value)
    if value and "".join(n + u for n, u in parts).lower() == value.lower():
        return sum(float(number) * _UNIT_S[unit.lower()] for number, unit in parts)
    raise InvalidInputError(
        f"duration {text!r} is not accepted: use e.g. 7d, 12h, 1h30m, 90s, 2w or seconds"
    )


__all__ = [
    "DEFAULT_GC_OLDER_THAN_S",
    "ClaimView",
    "GcReport",
    "PlanReport",
    "Removed",
    "Snapshot",
    "Trace",
    "TraceRow",
    "build_trace",
    "collect_garbage",
    "format_duration",
    "observer_from_env",
    "parse_duration",
    "plan_events",
    "plan_report",
    "read_snapshot",
    "short_id",
    "short_ids",
]
