"""``mcp-server-heartbeat status [--json] [--all]``: the sessions and the claimed
plans at a glance (the heartbeat manager's active-sessions view)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import TextIO

from ..domain.models import SessionView
from ..session.observe import Snapshot, format_duration, read_snapshot, short_ids
from . import EXIT_OK
from .common import guarded, open_reader, table, use_colour

LOCK_WAIT_S = 0.5
"""Seconds ``status`` waits before it reports the directory lock's holder: a lock
held that long is not a claim in progress (those take milliseconds). A stopped
holder is reported at once."""


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the snapshot as tables (or JSON with ``--json``). Exit 0, 1 or 2."""
    stream = out or sys.stdout

    def body() -> int:
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


def render(snapshot: Snapshot, colour: bool = False, show_all: bool = False) -> list[str]:
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


def _stale_in(view: SessionView) -> str:
    """Time to stale, where it means something: for a running session not stale yet."""
    if view.seconds_until_stale is None or view.status == "stale":
        return "-"
    return f"{view.seconds_until_stale:.0f}s"


__all__ = ["render", "run"]
