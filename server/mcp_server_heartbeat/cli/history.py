"""``mcp-server-heartbeat history PLAN [--json]``: the plan's events, newest last."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from ..domain.clock import format_utc
from ..domain.models import TRANSITIONS, Event
from ..domain.validation import validate_id
from ..session.observe import short_ids
from . import EXIT_OK
from .common import guarded, open_reader, table


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the plan's events from the event log. Exit 0 (also when there are
    none), 1 or 2 (a bad plan id)."""
    stream = out or sys.stdout

    def body() -> int:
        plan_id = validate_id(args.plan_id, "PLAN")
        reader = open_reader(args)
        events = reader.store.plan_history(plan_id, None)
        skipped = reader.store.unreadable_events()
        ledger = reader.store.read_claim(plan_id)
        unreadable = (
            f"{skipped} unreadable line{'s' if skipped != 1 else ''} of the event log skipped "
            "(torn by a crash, or not an event)"
        )
        if args.json:
            payload = {
                "plan_id": plan_id,
                "holder": None if ledger is None else ledger.holder,
                "fencing_token": None if ledger is None else ledger.fencing_token,
                "transitions": sum(1 for event in events if event.event in TRANSITIONS),
                "events": [event.model_dump(mode="json", exclude_none=True) for event in events],
                "skipped_lines": skipped,
            }
            stream.write(json.dumps(payload, indent=2) + "\n")
            return EXIT_OK
        if not events:
            stream.write(f"no events for plan {plan_id} in {reader.store.location}\n")
            if skipped:
                stream.write(unreadable + "\n")
            return EXIT_OK
        shorten = short_ids(
            [ledger.holder if ledger else None]
            + [sid for e in events for sid in (e.session_id, e.previous_holder, e.taken_by)]
        )
        lines = table(
            ["TIME (UTC)", "EVENT", "SESSION", "TOKEN", "DETAILS"],
            [_row(event, shorten) for event in events],
        )
        if ledger is not None:
            holder = shorten(ledger.holder) if ledger.holder else "nobody"
            lines.append("")
            transitions = sum(1 for event in events if event.event in TRANSITIONS)
            lines.append(
                f"now: held by {holder}, last fencing token {ledger.fencing_token}; "
                f"{transitions} transition{'s' if transitions != 1 else ''} in the log"
            )
        if skipped:
            lines.append(unreadable)
        stream.write("\n".join(lines) + "\n")
        return EXIT_OK

    return guarded("history", body)


def _row(event: Event, shorten: Callable[[str | None], str]) -> list[str]:
    details = []
    if event.previous_holder:
        details.append(f"from {shorten(event.previous_holder)}")
    if event.taken_by:
        details.append(f"to {shorten(event.taken_by)}")
    if event.reason:
        details.append(event.reason)
    if event.force:
        details.append("force")
    return [
        format_utc(event.at)[:-5] + "Z",
        event.event,
        shorten(event.session_id),
        "-" if event.fencing_token is None else str(event.fencing_token),
        ", ".join(details) or "-",
    ]


__all__ = ["run"]
