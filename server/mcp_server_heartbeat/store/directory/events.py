"""The event log: an append-only record of every change of sessions and claims.

One JSON object per line in ``<dir>/events.jsonl`` (the name does not end in
``.json``, so readers that glob ``<dir>/*.json`` for sessions never see it).
Each :class:`Event` says what happened (``event``), when (UTC), to which
session and plan, with which fencing token and why.

Guarantees:

* **Log and state agree.** An event is appended in the same transaction as
  the change it records, after the change is written
  (:class:`~.transaction.DirectoryTransaction`), under the directory's lock; a
  failure to append is logged, and the change stands (it is the truth, the log
  its audit trail).
* **Append-only.** A line is written with one ``write(2)`` on a descriptor
  opened ``O_APPEND | O_NOFOLLOW`` and synced with ``fdatasync`` (which
  flushes the data and the new file size, all a reader needs; only the
  modification time may lag after a power cut). A crash can leave at most a
  torn last line; readers skip lines that are not valid events and count them.
* **Bounded.** When ``events.jsonl`` passes :data:`ROTATE_AT_BYTES` it is
  renamed to ``events.1.jsonl`` (older generations shift up to
  :data:`KEEP_GENERATIONS`, the oldest is dropped). ``gc`` drops events older
  than its limit. A plan's transition count therefore covers the log's
  retention, not all time — its fencing token (in the claim ledger) is the
  count that never goes back. A reader that races a rotation may read one
  generation twice or miss one; the next read is whole again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from ...domain.errors import StoreError
from ...domain.models import TRANSITIONS, Event, EventKind
from .atomic import fsync_directory, write_atomic

EVENTS_NAME = "events.jsonl"
"""The live log file inside the heartbeat directory."""

ROTATE_AT_BYTES = 1024 * 1024
"""The live log is rotated once it reaches this size (1 MiB, about 5,000 events)."""

KEEP_GENERATIONS = 4
"""Rotated generations kept: ``events.1.jsonl`` (newest) .. ``events.4.jsonl``."""

MAX_LINE_BYTES = 8192
"""A line longer than this is skipped by readers (never written by this server)."""


class EventLog:
    """``events.jsonl`` and its rotated generations in one directory.

    Appending and pruning must happen inside the store's lock (the service and
    ``gc`` do); reading needs no lock and never creates or modifies anything.
    """

    def __init__(
        self,
        directory: Path,
        rotate_at: int = ROTATE_AT_BYTES,
        keep: int = KEEP_GENERATIONS,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / EVENTS_NAME
        self.rotate_at = rotate_at
        self.keep = keep

    def generation(self, number: int) -> Path:
        """Path of generation ``number``: 0 is the live log, 1 the newest rotated one."""
        if number == 0:
            return self.path
        return self.directory / f"events.{number}.jsonl"

    def append(self, event: Event) -> None:
        """Append one event (inside the store's lock), rotating first if the log is full.

        Raises:
            StoreError: the line could not be written (directory gone, disk full);
                nothing partial is left except, after a crash, a torn last line.
        """
        line = (event.model_dump_json(exclude_none=True) + "\n").encode()
        try:
            self._rotate_if_full()
            # O_NONBLOCK: a FIFO planted as events.jsonl must not block the server
            # (inside the store's lock) until a reader shows up (fault suite: hostile).
            fd = os.open(
                self.path,
                os.O_WRONLY
                | os.O_APPEND
                | os.O_CREAT
                | os.O_NOFOLLOW
                | os.O_CLOEXEC
                | os.O_NONBLOCK,
                0o600,
            )
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise StoreError(f"{self.path} is not a regular file; no event was logged")
                if stat.S_IMODE(info.st_mode) != 0o600 and info.st_uid == os.geteuid():
                    os.fchmod(fd, 0o600)  # the umask cut O_CREAT's 0600 (fault suite: perms)
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                _datasync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(f"{self.path} is a symbolic link; no event was logged") from exc
            raise StoreError(f"could not append to {self.path}: {exc.strerror or exc}") from exc

    def _rotate_if_full(self) -> None:
        try:
            size = os.lstat(self.path).st_size
        except FileNotFoundError:
            return
        if size < self.rotate_at:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.generation(self.keep))
        for number in range(self.keep - 1, -1, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.generation(number), self.generation(number + 1))
        fsync_directory(self.directory)

    def read(self) -> tuple[list[Event], int]:
        """Every readable event, oldest first, and the number of lines skipped.

        Reads the rotated generations (oldest first), then the live log. Never
        follows a symbolic link, never creates anything. A missing directory or
        log is an empty log.
        """
        events: list[Event] = []
        skipped = 0
        for number in range(self.keep, -1, -1):
            for line in _lines(self.generation(number)):
                if not line.strip():
                    continue
                event = _parse(line)
                if event is None:
                    skipped += 1
                else:
                    events.append(event)
        return events, skipped

    def plan_history(self, plan_id: str, limit: int | None) -> list[Event]:
        """The ``limit`` most recent events of ``plan_id`` (None: all), oldest first.

        Reads from the end of the live log back through the rotated generations
        (newest first) and stops as soon as it has ``limit`` events: older
        generations are not opened, and only lines that mention ``plan_id`` are
        parsed. Unreadable lines are skipped, as by :meth:`read`.
        """
        if limit is not None and limit <= 0:
            return []
        needle = _quoted(plan_id)
        found: list[Event] = []
        for number in range(0, self.keep + 1):
            for line in _lines_backwards(self.generation(number)):
                if needle not in line:
                    continue
                event = _parse(line)
                if event is None or event.plan_id != plan_id:
                    continue
                found.append(event)
                if limit is not None and len(found) >= limit:
                    return found[::-1]
        return found[::-1]

    def count(self, plan_id: str, kinds: frozenset[str]) -> int:
        """How many events of ``plan_id`` with a kind in ``kinds`` the log holds
        (every generation; only lines that mention ``plan_id`` are parsed)."""
        needle = _quoted(plan_id)
        total = 0
        for number in range(self.keep, -1, -1):
            for line in _lines(self.generation(number)):
                if needle in line:
                    event = _parse(line)
                    if event is not None and event.plan_id == plan_id and event.event in kinds:
                        total += 1
        return total

    def prune(self, before: datetime, dry_run: bool = False) -> int:
        """Drop events older than ``before`` (aware UTC), inside the store's lock.

        The kept events are written atomically as the new live log and the
        rotated generations are removed. Returns the number of events dropped
        (or that would be, with ``dry_run``).

        Raises:
            StoreError: the new log could not be written; the old one is unchanged.
        """
        events, _ = self.read()
        kept = [event for event in events if event.at >= before]
        dropped = len(events) - len(kept)
        if dry_run or dropped == 0:
            return dropped
        rotated = [n for n in range(1, self.keep + 1) if os.path.lexists(self.generation(n))]
        data = b"".join(
            (event.model_dump_json(exclude_none=True) + "\n").encode() for event in kept
        )
        write_atomic(self.directory, EVENTS_NAME, data)
        for number in rotated:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.generation(number))
        fsync_directory(self.directory)
        return dropped


def _datasync(fd: int) -> None:
    """``fdatasync`` where the platform has it (Linux), else ``fsync``."""
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _lines(path: Path) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        with os.fdopen(fd, "rb", closefd=False) as stream:
            yield from stream
    finally:
        os.close(fd)


def _quoted(plan_id: str) -> bytes:
    """``"<plan_id>"`` as it appears in a line that names the plan (a valid id
    needs no JSON escaping): lines without it are not parsed."""
    return b'"' + plan_id.encode() + b'"'


BACKWARD_BLOCK = 64 * 1024
"""Bytes read at a time when a generation is read from its end."""


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """The lines of ``path`` from the last to the first, read in blocks from the
    end (a plan's recent history is usually in the last block). Same guards as
    :func:`_lines`: no link followed, nothing but a regular file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        position = info.st_size
        tail = b""
        while position > 0:
            size = min(BACKWARD_BLOCK, position)
            position -= size
            block = os.pread(fd, size, position) + tail
            parts = block.split(b"\n")
            tail = parts[0]  # may continue in the block before
            for line in reversed(parts[1:]):
                if line:
                    yield line + b"\n"
        if tail:
            yield tail
    finally:
        os.close(fd)


def _parse(line: bytes) -> Event | None:
    """The event on ``line``, or None for anything that is not one: torn, foreign,
    over-long, an integer past Python's 4,300-digit limit, nesting past the
    recursion limit. Never raises: one poisoned line must not break every
    reader (fault round two)."""
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            return None
        event = Event.model_validate(data)
        # Extra fields are kept (newer writers) and written back by ``prune``:
        # a value that cannot be serialised again is as unreadable as a torn line.
        event.model_dump_json(exclude_none=True)
        return event
    except (ValueError, ValidationError, RecursionError, OverflowError, TypeError):
        # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers.
        return None


__all__ = [
    "EVENTS_NAME",
    "KEEP_GENERATIONS",
    "ROTATE_AT_BYTES",
    "TRANSITIONS",
    "Event",
    "EventKind",
    "EventLog",
]
