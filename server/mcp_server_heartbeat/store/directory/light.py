"""The heartbeat directory read as plain JSON: the status line's light path.

The status line runs on every refresh of Claude Code's prompt, so it reads
session records without pydantic (this module imports nothing that loads it)
and without the lock. What it returns are the records as dicts; the liveness
rules are applied by the caller (``domain.liveness``), the same rules as
everywhere else.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_RECORD_BYTES = 1024 * 1024
"""A record file larger than this is skipped (no session record comes close)."""


class LightDirectoryReader:
    """Session records of one heartbeat directory as plain dicts (a :class:`~.LightReader`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def session_records(self) -> list[dict[str, Any]]:
        """See :func:`scan`."""
        return scan(self.directory)

    def now(self) -> datetime:
        """The local clock (aware UTC), as the directory store's default."""
        return datetime.now(UTC)


def scan(directory: Path) -> list[dict[str, Any]]:
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
        data = _read(directory / name)
        if data is None:
            continue
        try:
            record = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("session_id") == name[: -len(".json")]:
            records.append(record)
    return records


def _read(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
            return None
        return os.read(fd, MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


__all__ = ["MAX_RECORD_BYTES", "LightDirectoryReader", "scan"]
