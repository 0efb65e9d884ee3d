"""The heartbeat directory read as plain JSON: the status line's light path.

The status line runs on every refresh of Claude Code's prompt, so it reads
session records without pydantic (this module imports nothing that loads it)
and without the lock. What it returns are the records (and, for the loss hooks, a plan's ledger and
events) as dicts; the liveness
rules are applied by the caller (``domain.liveness``), the same rules as
everywhere else.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_RECORD_BYTES = 1024 * 1024
"""A record file larger than this is skipped (no session record comes close)."""
MAX_LOG_BYTES = 4 * 1024 * 1024
"""An event log generation larger than this is not read by the light path (the
directory store rotates its log at 1 MiB)."""
MAX_EVENT_LINE_BYTES = 8192
"""A log line longer than this is skipped, as the store's own reader does."""
EVENT_GENERATIONS = 4
"""Rotated generations of the event log (``events.1.jsonl`` .. ``events.4.jsonl``),
as :data:`~.events.KEEP_GENERATIONS` (not imported: that module loads pydantic)."""
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A plan id that is safe as a file name (:data:`~...domain.validation.ID_PATTERN`);
compiled on first use (the status line reads no ledger)."""


class LightDirectoryReader:
    """Session records of one heartbeat directory as plain dicts (a :class:`~.LightReader`)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)

    def session_records(self) -> list[dict[str, Any]]:
        """See :func:`scan`."""
        return scan(self.directory)

    def claim(self, plan_id: str) -> dict[str, Any] | None:
        """The plan's claim ledger (``claims/<plan_id>.json``) as a dict; None when
        missing, unreadable or ``plan_id`` is not a safe file name."""
        if not re.match(SAFE_NAME, plan_id):
            return None
        data = _read(os.path.join(self.directory, "claims", f"{plan_id}.json"))
        try:
            record = json.loads(data) if data is not None else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("plan_id") == plan_id else None

    def plan_events(self, plan_id: str, kinds: frozenset[str]) -> list[dict[str, Any]]:
        """The events of ``plan_id`` whose kind is in ``kinds``, oldest first, as
        dicts, from the live log and its rotated generations. Only lines naming
        the plan are parsed; torn or foreign lines are skipped."""
        if not re.match(SAFE_NAME, plan_id):
            return []
        quoted = b'"' + plan_id.encode() + b'"'
        found: list[dict[str, Any]] = []
        for number in range(EVENT_GENERATIONS, -1, -1):
            name = "events.jsonl" if number == 0 else f"events.{number}.jsonl"
            data = _read(os.path.join(self.directory, name), MAX_LOG_BYTES)
            if not data or quoted not in data:
                continue
            for line in data.splitlines():
                if quoted not in line or len(line) > MAX_EVENT_LINE_BYTES:
                    continue
                try:
                    event = json.loads(line)
                except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                    continue
                if (
                    isinstance(event, dict)
                    and event.get("plan_id") == plan_id
                    and event.get("event") in kinds
                ):
                    found.append(event)
        return found

    def now(self) -> datetime:
        """The local clock (aware UTC), as the directory store's default."""
        return datetime.now(UTC)


def scan(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The session records of ``directory`` as plain dicts (``<id>.json`` whose
    ``session_id`` matches the name); anything unreadable is skipped. Never
    follows a link, never blocks on a FIFO, never creates anything."""
    try:
        names = [
            entry.name
            for entry in os.scandir(directory)
            if entry.name.endswith(".json") and not entry.name.startswith(".")
        ]
    except OSError:
        return []
    records = []
    for name in names:
        data = _read(os.path.join(directory, name))
        if data is None:
            continue
        try:
            record = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("session_id") == name[: -len(".json")]:
            records.append(record)
    return records


def _read(path: str, limit: int = MAX_RECORD_BYTES) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks = []
        while chunk := os.read(fd, limit + 1):
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > limit:
                return None
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


__all__ = ["MAX_RECORD_BYTES", "LightDirectoryReader", "scan"]
