"""``mcp-server-heartbeat gc [--older-than DURATION] [--dry-run] [--json]``:
remove old records of ended and dead sessions, and old events."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from ..session.observe import GcReport, collect_garbage, format_duration, parse_duration, short_ids
from . import EXIT_OK
from .common import guarded, open_reader


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Collect, then print what was removed. Exit 0, 1 (store error) or 2 (bad duration)."""
    stream = out or sys.stdout

    def body() -> int:
        older_than = parse_duration(args.older_than)
        reader = open_reader(args)
        if not reader.exists:
            stream.write(f"nothing to collect: {reader.store.location} does not exist\n")
            return EXIT_OK
        report = collect_garbage(
            reader.store,
            reader.clock(),
            older_than,
            reader.observer,
            reader.probe,
            reader.thresholds,
            dry_run=args.dry_run,
        )
        if args.json:
            stream.write(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
        else:
            stream.write("\n".join(render(report)) + "\n")
        return EXIT_OK

    return guarded("gc", body)


def render(report: GcReport) -> list[str]:
    """One line per removed record, then a summary."""
    verb = "would remove" if report.dry_run else "removed"
    shorten = short_ids(item.session_id for item in report.removed)
    lines = [
        f"{verb} {shorten(item.session_id)}  ({item.status}, last seen "
        f"{format_duration(item.age_s)} ago)  {item.session_id}.json"
        for item in report.removed
    ]
    lines.append(
        f"{verb} {len(report.removed)} session record"
        f"{'s' if len(report.removed) != 1 else ''} older than "
        f"{format_duration(report.older_than_s)} and {report.events_dropped} event"
        f"{'s' if report.events_dropped != 1 else ''}; kept {report.kept} record"
        f"{'s' if report.kept != 1 else ''} (claim ledgers are never removed)"
    )
    if report.temp_files_removed:
        lines.append(
            f"{verb} {len(report.temp_files_removed)} temp file"
            f"{'s' if len(report.temp_files_removed) != 1 else ''} of interrupted writes"
        )
    return lines


__all__ = ["render", "run"]
