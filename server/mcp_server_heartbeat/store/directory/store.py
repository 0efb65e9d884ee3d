"""The heartbeat directory: the default, embedded :class:`~.Store`.

Layout (all inside ``directory``; nothing is written anywhere else)::

    <dir>/.gitignore              "*": session files are never committed
    <dir>                         the cross-process lock is flock(2) on the
                                  directory itself (store/dirlock.py); a
                                  ``.lock`` file of older versions is ignored
    <dir>/<session_id>.json       one SessionRecord per session (kata schema)
    <dir>/claims/<plan_id>.json   one ClaimRecord per plan ever claimed
    <dir>/events.jsonl            the append-only event log (store/events.py),
                                  rotated to events.<n>.jsonl
    <dir>/.<name>.<random>.tmp    a write in flight (hidden; never listed)

Readers that glob ``<dir>/*.json`` (kata status lines) see only session
records. The directory is created 0700, files are 0600 whatever the umask.

Changes go through :meth:`DirectoryStore.transaction` (the lock plus the
ordered commit of ``transaction.py``). The single-file primitives
(``write_session``, ``write_claim``, ``delete_session``, ``append_event``) and
the re-entrant :meth:`DirectoryStore.lock` are this backend's own: the commit
uses them, tests seed and hold the directory with them; they are not part of
the :class:`~.Store` protocol.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ...domain.clock import Clock, utc_now
from ...domain.errors import StoreBusyError, StoreError
from ...domain.gcpause import collection_paused
from ...domain.models import ClaimRecord, Event, SessionRecord, Unreadable
from ...domain.validation import describe_validation_error
from ..names import safe_stem
from ..watch import PollingWatch, stat_signature
from .atomic import UnreadableFile, fsync_directory, read_guarded, write_atomic
from .dirlock import DirectoryGone, DirectoryLock, LockTimeout
from .events import EventLog
from .lockholder import LockHolder, describe_process, flock_holders
from .transaction import DirectoryTransaction

M = TypeVar("M", bound=BaseModel)

CLAIMS_SUBDIR = "claims"
GITIGNORE = ".gitignore"
DEFAULT_LOCK_TIMEOUT_S = 5.0


class DirectoryStore:
    """Session records and claim ledgers as atomic JSON files in one directory.

    Construction touches nothing on disk; :meth:`prepare` creates the layout
    (the server calls it once at start), so read-only users such as a status
    command never create or modify anything.

    Args:
        directory: the heartbeat directory.
        lock_timeout: seconds :meth:`transaction` waits for the lock by default.
        clock: "now" for liveness judgments (aware UTC); tests inject a fake one.
    """

    def __init__(
        self,
        directory: Path,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        clock: Clock = utc_now,
    ) -> None:
        self.directory = Path(directory)
        self.claims_dir = self.directory / CLAIMS_SUBDIR
        self._lock = DirectoryLock(self.directory)
        self.lock_timeout = lock_timeout
        self.events = EventLog(self.directory)
        self._clock = clock
        self._in_transaction = threading.local()

    @property
    def location(self) -> str:
        """The directory's path."""
        return str(self.directory)

    def prepare(self) -> list[str]:
        """Create the directory (0700), ``claims/`` and the ``.gitignore``.

        Returns:
            Warnings for a person (e.g. an existing directory that other users
            can write to); empty when all is well.

        Raises:
            StoreError: the directory cannot be created or is not a directory.
        """
        warnings: list[str] = []
        try:
            created = not self.directory.exists()
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if created:
                os.chmod(self.directory, 0o700)
            info = os.stat(self.directory)
            if not stat.S_ISDIR(info.st_mode):
                raise StoreError(f"{self.directory} exists and is not a directory")
            if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                warnings.append(
                    f"{self.directory} is writable by other users (mode "
                    f"{stat.S_IMODE(info.st_mode):o}); anyone who can write it can forge "
                    "sessions. Run: chmod 700 " + str(self.directory)
                )
            self._claims_dir_ready()
            if not (self.directory / GITIGNORE).exists():
                write_atomic(self.directory, GITIGNORE, b"*\n")
        except StoreError:
            raise
        except OSError as exc:
            raise StoreError(
                f"cannot create the heartbeat directory {self.directory}: {exc.strerror or exc}"
            ) from exc
        return warnings

    def exists(self) -> bool:
        """True when the heartbeat directory exists (a reader of a missing one sees
        an empty store)."""
        return self.directory.is_dir()

    def now(self) -> datetime:
        """The clock liveness is judged with: the local clock (aware UTC)."""
        return self._clock()

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[DirectoryTransaction]:
        """A unit of work under the directory's lock (see :class:`DirectoryTransaction`
        for the order in which its writes are applied at commit).

        Args:
            timeout: seconds to wait for the lock; None means ``lock_timeout``.

        Raises:
            StoreBusyError: the lock was not acquired in time; nothing was changed.
            StoreError: the directory is gone, or the commit point failed
                (nothing was changed).
            RuntimeError: a transaction of this store is already open in this thread.
        """
        if getattr(self._in_transaction, "open", False):
            raise RuntimeError(
                "a transaction of this store is already open in this thread; "
                "transactions are not re-entrant"
            )
        with self.lock(timeout):
            self._in_transaction.open = True
            try:
                tx = DirectoryTransaction(self)
                yield tx
                tx.commit()
            finally:
                self._in_transaction.open = False

    def busy_holder(self, wait: float = 0.0) -> dict[str, Any] | None:
        """The process holding the directory's lock (``pid``, ``session_id``,
        ``command``, ``stopped``, ``description``), or None; see :meth:`lock_holder`."""
        holder = self.lock_holder(wait)
        if holder is None:
            return None
        return {**dataclasses.asdict(holder), "description": holder.describe()}

    @contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the directory's cross-process lock: ``flock(2)`` on the directory
        itself (see ``store/dirlock.py``), re-entrant within one thread.

        Args:
            timeout: seconds to wait; None means ``lock_timeout``.

        Raises:
            StoreBusyError: not acquired in time; the message names the holding
                process (PID, session, command, and how to resume it if stopped).
            StoreError: the directory is gone or cannot be opened.
        """
        wait = self.lock_timeout if timeout is None else timeout
        try:
            self._lock.acquire(wait)
        except LockTimeout as exc:
            holder = self.lock_holder()
            by = f" by {holder.describe()}" if holder is not None else ""
            raise StoreBusyError(
                f"the heartbeat directory {self.directory} stayed locked for {wait:g} s{by}; "
                "nothing was changed, try again"
            ) from exc
        except DirectoryGone as exc:
            raise StoreError(
                f"the heartbeat directory {self.directory} is gone (deleted?); nothing was "
                "changed. It is recreated by the next server start, or: mkdir -m 700 "
                + str(self.directory)
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"cannot lock the heartbeat directory {self.directory}: {exc.strerror or exc}"
            ) from exc
        try:
            yield
        finally:
            self._lock.release()

    def lock_holder(self, wait: float = 0.0) -> LockHolder | None:
        """The process holding the directory's lock (from ``/proc/locks``), or None
        when nobody does, or nobody still does after ``wait`` seconds (a stopped
        holder is reported at once). Takes the lock only to test it, never
        writes. Linux only; None elsewhere.
        """
        identity = self._lock.identity()
        if identity is None:
            return None
        pids = flock_holders(*identity)
        if not pids:
            return None
        try:
            records, _ = self.list_sessions()
        except StoreError:
            records = []
        holder = describe_process(pids[0], records)
        if holder.stopped or wait <= 0:
            return holder
        try:
            self._lock.acquire(wait)
        except (LockTimeout, OSError):
            return holder
        self._lock.release()
        return None

    # -- sessions ---------------------------------------------------------------

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The record of ``session_id``, or None when missing or unreadable."""
        safe_stem(session_id, "session_id")
        try:
            return _load(self.directory / f"{session_id}.json", SessionRecord)
        except (FileNotFoundError, UnreadableFile):
            return None

    def write_session(self, record: SessionRecord) -> None:
        """Atomically replace ``<dir>/<session_id>.json``. Raises StoreError.

        Not synced when it replaces a previous version (a routine heartbeat, or
        a record following its claim ledger, which is the truth): a power cut
        may cost the last seconds of such rewrites, never a claim. A new record
        is synced (``atomic.write_atomic(durable=False)``)."""
        safe_stem(record.session_id, "session_id")
        write_atomic(self.directory, f"{record.session_id}.json", _dump(record), durable=False)

    def list_sessions(self) -> tuple[list[SessionRecord], list[Unreadable]]:
        """Every session record, sorted by file name, and every ``*.json`` that is not one.

        Hidden files (temp files, the lock) and non-``.json`` names are not
        considered. Never creates, follows, opens for writing or deletes anything.
        """
        records: list[SessionRecord] = []
        unreadable: list[Unreadable] = []
        try:
            # One descriptor for the listing: each file is opened by name in it
            # (no path resolved per file; every file from the same directory).
            directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return records, unreadable
        except OSError as exc:
            raise _unlistable(self.directory, exc) from exc
        try:
            try:
                with os.scandir(directory) as entries:
                    names = sorted(
                        entry.name
                        for entry in entries
                        if entry.name.endswith(".json") and not entry.name.startswith(".")
                    )
            except OSError as exc:
                raise _unlistable(self.directory, exc) from exc
            with collection_paused():
                records, unreadable = _read_records(directory, names)
        finally:
            os.close(directory)
        return records, unreadable

    def delete_session(self, session_id: str) -> bool:
        """Remove ``<dir>/<session_id>.json`` (at the commit of a transaction).

        Returns False when it was already gone. Never touches ``claims/``.

        Raises:
            StoreError: the file could not be removed.
        """
        safe_stem(session_id, "session_id")
        try:
            os.unlink(self.directory / f"{session_id}.json")
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(
                f"cannot remove {session_id}.json in {self.directory}: {exc.strerror or exc}"
            ) from exc
        fsync_directory(self.directory)
        return True

    wakes_on_change = False

    def wait_for_change(self, timeout: float) -> bool:
        """This store hears no change hints: sleeps ``timeout`` seconds, returns False."""
        time.sleep(max(0.0, timeout))
        return False

    def watch_claim(self, plan_id: str) -> PollingWatch:
        """A watch of ``claims/<plan_id>.json``: a stat every 0.1 s (every
        atomic write replaces the file, so inode, size or mtime change)."""
        safe_stem(plan_id, "plan_id")
        return PollingWatch(stat_signature(str(self.claims_dir / f"{plan_id}.json")))

    def prune_temp_files(self, before: datetime, dry_run: bool = False) -> list[str]:
        """Remove hidden temp files (``.<name>.<random>.tmp``) of writes that were
        killed before their rename, in the directory and ``claims/``, last
        modified before ``before`` (UTC). Readers never see them; this only
        frees the space. Returns their paths relative to the directory.

        Raises:
            StoreError: a file could not be removed.
        """
        with self.lock():
            return self._prune_temp_files(before, dry_run)

    def _prune_temp_files(self, before: datetime, dry_run: bool) -> list[str]:
        cutoff = before.timestamp()
        removed: list[str] = []
        for folder in (self.directory, self.claims_dir):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                name = entry.name
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                    if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                        continue
                    if not dry_run:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise StoreError(f"cannot remove {entry.path}: {exc.strerror or exc}") from exc
                removed.append(str(Path(entry.path).relative_to(self.directory)))
        return sorted(removed)

    # -- events -----------------------------------------------------------------

    def append_event(self, event: Event) -> None:
        """Append to ``events.jsonl`` under the directory's lock (the commit of a
        transaction does it; tests seed logs with it). Raises StoreError."""
        self.events.append(event)

    def read_events(self) -> list[Event]:
        """Every readable event, oldest first; torn or foreign lines are skipped."""
        return self.events.read()[0]

    def plan_history(self, plan_id: str, limit: int | None) -> list[Event]:
        """The ``limit`` most recent events of ``plan_id`` (None: all), oldest first,
        read from the end of the log (see :meth:`EventLog.plan_history`)."""
        safe_stem(plan_id, "plan_id")
        return self.events.plan_history(plan_id, limit)

    def count_plan_events(self, plan_id: str, kinds: frozenset[str]) -> int:
        """How many events of ``plan_id`` with a kind in ``kinds`` the log holds."""
        safe_stem(plan_id, "plan_id")
        return self.events.count(plan_id, kinds)

    def unreadable_events(self) -> int:
        """Lines of the event log (all generations) that are not events."""
        return self.events.read()[1]

    def prune_events(self, before: datetime, dry_run: bool = False) -> int:
        """Drop events older than ``before`` under the directory's lock; see
        EventLog.prune. Raises StoreError, StoreBusyError."""
        with self.lock():
            return self.events.prune(before, dry_run=dry_run)

    # -- claims -----------------------------------------------------------------

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The claim ledger of ``plan_id``, or None if never claimed.

        Raises:
            StoreError: the ledger exists but cannot be read; a claim decision
                must not be made on a guess (tokens must never go back).
        """
        safe_stem(plan_id, "plan_id")
        path = self.claims_dir / f"{plan_id}.json"
        try:
            _check_real_dir(self.claims_dir)
            return _load(path, ClaimRecord)
        except FileNotFoundError:
            return None
        except (UnreadableFile, ValueError) as exc:
            raise StoreError(f"the claim ledger {path} is unreadable: {exc}") from exc

    def write_claim(self, claim: ClaimRecord) -> None:
        """Atomically and durably replace ``claims/<plan_id>.json`` (file and
        ``claims/`` fsynced before it returns: the ledger is the truth, and its
        fencing token must never go back, even after a power cut). Raises StoreError."""
        safe_stem(claim.plan_id, "plan_id")
        try:
            self._claims_dir_ready()
        except OSError as exc:
            raise StoreError(
                f"cannot use {self.claims_dir}: {exc.strerror or exc}; nothing was changed"
            ) from exc
        write_atomic(self.claims_dir, f"{claim.plan_id}.json", _dump(claim))

    def _claims_dir_ready(self) -> None:
        """Create ``claims/`` (0700) when missing, e.g. after the directory was
        recreated by hand. Raises StoreError when it is a symlink or not a directory
        (a link would let ledgers be written outside the heartbeat directory)."""
        try:
            os.mkdir(self.claims_dir, 0o700)
        except FileExistsError:
            _check_real_dir(self.claims_dir)
        else:
            os.chmod(self.claims_dir, 0o700)  # whatever the umask

    def iter_claims(self) -> Iterator[ClaimRecord]:
        """Every readable claim ledger, sorted by plan id; unreadable ones are skipped."""
        try:
            names = sorted(
                entry.name
                for entry in os.scandir(self.claims_dir)
                if entry.name.endswith(".json") and not entry.name.startswith(".")
            )
        except OSError:
            return
        for name in names:
            try:
                yield _load(self.claims_dir / name, ClaimRecord)
            except (FileNotFoundError, UnreadableFile, ValueError):
                continue


def _check_real_dir(path: Path) -> None:
    """Raise StoreError unless ``path`` is a directory itself, not a symlink to one.
    FileNotFoundError passes through."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
        raise StoreError(
            f"{path} is {what}; claim ledgers are only kept in a real directory inside "
            "the heartbeat directory (never followed). Remove it and restart the server."
        )


def _dump(model: BaseModel) -> bytes:
    return (model.model_dump_json(indent=2) + "\n").encode()


def _read_records(directory: int, names: list[str]) -> tuple[list[SessionRecord], list[Unreadable]]:
    """The session records among ``names`` in the open ``directory``, and the
    files that are not one (:meth:`DirectoryStore.list_sessions`)."""
    records: list[SessionRecord] = []
    unreadable: list[Unreadable] = []
    for name in names:
        stem = name[:-5]  # without ".json"
        try:
            safe_stem(stem, "file name")
            record = _parse(read_guarded(name, dir_fd=directory), SessionRecord)
        except FileNotFoundError:
            continue  # removed between the scan and the read
        except (UnreadableFile, ValueError) as exc:
            unreadable.append(Unreadable(file=name, reason=str(exc)))
            continue
        if record.session_id != stem:
            unreadable.append(
                Unreadable(
                    file=name,
                    reason=f"session_id {record.session_id!r} does not match the file name",
                )
            )
            continue
        records.append(record)
    return records, unreadable


def _unlistable(directory: Path, exc: OSError) -> StoreError:
    return StoreError(f"cannot list the heartbeat directory {directory}: {exc.strerror or exc}")


def _load(path: Path, model: type[M]) -> M:
    """Read and validate one JSON file. Raises FileNotFoundError, UnreadableFile, ValueError."""
    return _parse(read_guarded(path), model)


def _parse(raw: bytes, model: type[M]) -> M:
    """Validate one file's bytes as ``model``. Raises UnreadableFile, ValueError.

    A well-formed file is parsed and validated in one pass from its bytes
    (``model_validate_json``); only a file that fails is parsed again step by
    step, to say exactly what is wrong with it."""
    try:
        return model.model_validate_json(raw)
    except (ValueError, OverflowError, RecursionError):
        pass  # ValidationError is a ValueError: explained below
    if not raw.strip():
        raise UnreadableFile("empty file")
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise UnreadableFile("not valid JSON (nested too deeply)") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise UnreadableFile(f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UnreadableFile(f"not a JSON object (a {type(data).__name__})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UnreadableFile(
            f"not a valid {model.__name__}: {describe_validation_error(exc, 'record')}"
        ) from exc
    except (ValueError, OverflowError, RecursionError) as exc:
        raise UnreadableFile(f"not a valid {model.__name__}: {exc}") from exc


__all__ = ["CLAIMS_SUBDIR", "DEFAULT_LOCK_TIMEOUT_S", "DirectoryStore"]
