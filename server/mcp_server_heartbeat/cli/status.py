"""``mcp-server-heartbeat status [--json] [--all]``: the sessions and the claimed
plans at a glance (the heartbeat manager's active-sessions view).

The table of a heartbeat directory is built from the files read as plain JSON
(:func:`~mcp_server_heartbeat.store.directory.plain.read_plain`) and classified
by the one reader's rules (:func:`~mcp_server_heartbeat.session.readers.classify`,
each process probed once), without pydantic. When that read declines (a file
it cannot vouch for, the lock held, no directory, a database store) and for
``--json``, the snapshot is read through the store and its models, which
report unreadable files and the lock's holder: the same table either way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from ..domain.clock import format_duration, parse_utc, utc_now
from ..session.shortids import short_ids
from . import EXIT_OK
from .common import guarded, open_reader, reader_config, table, use_colour

if TYPE_CHECKING:  # the table's path does not load pydantic
    from ..domain.liveness import Liveness
    from ..host.probe import ProcessProbe
    from ..session.observe import Snapshot

LOCK_WAIT_S = 0.5
"""Seconds ``status`` waits before it reports the directory lock's holder: a lock
held that long is not a claim in progress (those take milliseconds). A stopped
holder is reported at once."""


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the snapshot as tables (or JSON with ``--json``). Exit 0, 1 or 2."""
    stream = out or sys.stdout

    def body() -> int:
        if not args.json:
            lines = plain_lines(args, use_colour(stream), os.environ)
            if lines is not None:
                stream.write("\n".join(lines) + "\n")
                return EXIT_OK
        from ..session.observe import read_snapshot

        reader = open_reader(args)
        snapshot = read_snapshot(
            reader.store,
            reader.clock(),
            reader.observer,
            reader.probe,
            reader.thresholds,
            include_ended=args.all,
        )
        holder = reader.store.busy_holder(wait=LOCK_WAIT_S) if snapshot.exists else None
        if args.json:
            payload = snapshot.model_dump(mode="json")
            payload["lock_holder"] = holder
            stream.write(json.dumps(payload, indent=2) + "\n")
        else:
            lines = render(snapshot, use_colour(stream), args.all)
            if holder is not None:
                lines.append(f"directory lock: held by {holder['description']}")
            stream.write("\n".join(lines) + "\n")
        return EXIT_OK

    return guarded("status", body)


class PlainSession:
    """A session row of the table: the record's shown fields and its liveness
    (the fields of :class:`~mcp_server_heartbeat.domain.models.SessionView` the
    table reads, with the same rule: no health or time to stale once over)."""

    __slots__ = (
        "branch",
        "health",
        "heartbeat_age_s",
        "last_activity",
        "plan_id",
        "relationship",
        "role",
        "seconds_until_stale",
        "session_id",
        "status",
        "worktree",
    )

    def __init__(self, record: Mapping[str, Any], liveness: Liveness) -> None:
        over = liveness.status in ("ended", "dead")
        self.session_id: str = record["session_id"]
        self.plan_id: str | None = record.get("plan_id")
        self.branch: str | None = record.get("branch")
        self.worktree: str | None = record.get("worktree")
        self.role: str | None = record.get("role")
        self.last_activity: str | None = record.get("last_activity")
        self.status: str = liveness.status
        self.health: str | None = None if over else liveness.health
        self.heartbeat_age_s: float | None = liveness.heartbeat_age_s
        self.seconds_until_stale: float | None = None if over else liveness.seconds_until_stale
        self.relationship: str = liveness.relationship


class PlainClaim:
    """A held plan of the table (the fields of ``ClaimView`` it reads)."""

    __slots__ = (
        "acquired_by",
        "fencing_token",
        "held_for_s",
        "holder",
        "holder_status",
        "plan_id",
        "takeover_reason",
    )

    def __init__(
        self, ledger: Mapping[str, Any], now: datetime, holder: PlainSession | None
    ) -> None:
        claimed_at = ledger.get("claimed_at")
        held = None if claimed_at is None else (now - parse_utc(claimed_at)).total_seconds()
        self.plan_id: str = ledger["plan_id"]
        self.holder: str = ledger["holder"]
        self.fencing_token: int = ledger["fencing_token"]
        self.held_for_s: float | None = None if held is None else round(max(0.0, held), 3)
        self.acquired_by: str | None = ledger.get("acquired_by")
        self.takeover_reason: str | None = ledger.get("takeover_reason")
        self.holder_status: str | None = None if holder is None else holder.status


class PlainSnapshot:
    """What :func:`render` reads of a snapshot, from plain records."""

    exists = True
    unreadable: tuple[()] = ()

    def __init__(
        self,
        directory: str,
        stale_after_s: float,
        sessions: list[PlainSession],
        claims: list[PlainClaim],
    ) -> None:
        self.directory = directory
        self.stale_after_s = stale_after_s
        self.sessions = sessions
        self.claims = claims


def plain_snapshot(
    args: argparse.Namespace,
    env: Mapping[str, str],
    clock: Callable[[], datetime] = utc_now,
    probe: ProcessProbe | None = None,
) -> PlainSnapshot | None:
    """The snapshot of the configured heartbeat directory read as plain JSON
    (what ``read_snapshot`` gives, for the table; ``clock`` gives "now", aware
    UTC, ``probe`` proves deaths: tests inject them), or None when the store must
    read it (see the module doc).

    Raises:
        ConfigError: a bad setting.
    """
    from ..domain.process import MemoProbe
    from ..host.identity import observer_here
    from ..host.probe import probe_process
    from ..session import readers
    from ..store import read_plain_records
    from .statusline import LightRecord

    config = reader_config(args, env)
    now = clock()  # the directory store's clock
    found = read_plain_records(config)
    if found is None:
        return None
    records, ledgers = found
    observer = observer_here(
        getattr(args, "session_id", None) or env.get("CLAUDE_CODE_SESSION_ID") or None
    )
    thresholds = config.thresholds
    probe = MemoProbe(probe or probe_process)
    views = [
        PlainSession(
            record,
            readers.classify(LightRecord.of(record), now, observer, probe, thresholds),
        )
        for record in records
    ]
    by_id = {view.session_id: view for view in views}
    if not args.all:
        views = [view for view in views if view.status != "ended"]
    claims = [
        PlainClaim(ledger, now, by_id.get(ledger["holder"]))
        for ledger in ledgers
        if ledger.get("holder") is not None
    ]
    return PlainSnapshot(
        str(config.dir_path), thresholds.stale_after, readers.by_status(views), claims
    )


def plain_lines(args: argparse.Namespace, colour: bool, env: Mapping[str, str]) -> list[str] | None:
    """The table from :func:`plain_snapshot`, or None when the store must read."""
    snapshot = plain_snapshot(args, env)
    return None if snapshot is None else render(snapshot, colour, args.all)


def render(
    snapshot: Snapshot | PlainSnapshot, colour: bool = False, show_all: bool = False
) -> list[str]:
    """The human form of a snapshot: a summary line, the sessions, the claimed plans."""
    where = "store" if "://" in snapshot.directory else "heartbeat directory"
    lines = [f"{where}: {snapshot.directory} (stale after {snapshot.stale_after_s:g}s)"]
    if not snapshot.exists:
        lines.append("no sessions yet: the directory does not exist")
        return lines
    counts: Counter[str] = Counter(view.status for view in snapshot.sessions)
    order = ["active", "idle", "stale", "dead", "ended"]
    summary = ", ".join(f"{counts[s]} {s}" for s in order if counts[s])
    lines.append(
        f"{len(snapshot.sessions)} session{'s' if len(snapshot.sessions) != 1 else ''}"
        + (f" ({summary})" if summary else "")
        + ("" if show_all else "; ended sessions hidden (--all shows them)")
    )
    shorten = short_ids(
        [view.session_id for view in snapshot.sessions]
        + [claim.holder for claim in snapshot.claims]
    )
    if snapshot.sessions:
        rows: list[list[str]] = []
        styles: list[list[str | None]] = []
        for view in snapshot.sessions:
            me = " (you)" if view.relationship == "self" else ""
            age = view.heartbeat_age_s
            rows.append(
                [
                    shorten(view.session_id) + me,
                    view.plan_id or "-",
                    view.branch or "-",
                    os.path.basename(view.worktree) if view.worktree else "-",
                    view.role or "-",
                    view.status,
                    view.health or "-",
                    "never" if age is None else f"{format_duration(age)} ago",
                    _stale_in(view),
                    view.last_activity or "-",
                ]
            )
            styles.append(
                [None, None, None, None, None, view.status, view.health, None, None, None]
            )
        lines.append("")
        lines.extend(
            table(
                [
                    "SESSION",
                    "PLAN",
                    "BRANCH",
                    "WORKTREE",
                    "ROLE",
                    "STATUS",
                    "HEALTH",
                    "HEARTBEAT",
                    "STALE IN",
                    "LAST ACTIVITY",
                ],
                rows,
                styles,
                colour,
            )
        )
    lines.append("")
    if snapshot.claims:
        lines.extend(
            table(
                ["PLAN", "HOLDER", "TOKEN", "SINCE", "HOLDER STATUS"],
                [
                    [
                        claim.plan_id,
                        shorten(claim.holder),
                        str(claim.fencing_token),
                        "-"
                        if claim.held_for_s is None
                        else f"{format_duration(claim.held_for_s)} ago",
                        (claim.holder_status or "record gone")
                        + (
                            f" (took over: {claim.takeover_reason})"
                            if claim.acquired_by == "takeover"
                            else ""
                        ),
                    ]
                    for claim in snapshot.claims
                ],
                [[None, None, None, None, claim.holder_status] for claim in snapshot.claims],
                colour,
            )
        )
    else:
        lines.append("no plan is claimed")
    for item in snapshot.unreadable:
        lines.append(f"unreadable: {item.file}: {item.reason}")
    return lines


def _stale_in(view: Any) -> str:
    """Time to stale, where it means something: for a running session not stale yet."""
    if view.seconds_until_stale is None or view.status == "stale":
        return "-"
    return f"{view.seconds_until_stale:.0f}s"


__all__ = ["PlainSnapshot", "plain_snapshot", "render", "run"]
