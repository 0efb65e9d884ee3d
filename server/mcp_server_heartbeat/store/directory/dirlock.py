"""The heartbeat directory's cross-process lock: ``flock(2)`` on the directory itself.

Why not a lock file: a lock taken on ``<dir>/.lock`` is a lock on an inode, and
deleting the file (what a person does after a "stayed locked" error) lets the
next process create and lock a new inode while the old holder still holds the
old one — two holders, duplicate fencing tokens (fault round two). A directory
cannot be removed while it has entries, and replacing ``.lock`` with a link or
a directory changes nothing, so the lock is taken on a descriptor of the
heartbeat directory itself. ``filelock`` cannot do this (it opens its path for
writing, which a directory refuses), hence these few lines of ``fcntl``.

* **Kept open.** One ``O_RDONLY | O_DIRECTORY | O_CLOEXEC`` descriptor per store,
  opened on first use and reused; a forked child drops it and its parent's
  lock state (sharing the parent's open file description, it would share its
  lock) and opens its own.
* **Polled, fast first.** A contended lock is retried non-blocking, first after
  :data:`POLL_MIN_S` seconds, the pause doubling up to :data:`POLL_S`, until the
  timeout (a blocking ``flock`` cannot time out without signals). A short
  critical section (a claim, a release) is usually over within the first
  pauses, so the lock changes hands without a whole poll period lost; a long
  wait costs one wake-up per :data:`POLL_S`.
* **One flock per uncontended acquire**, plus one ``stat`` of the path (below);
  the descriptor's own identity is read once, when it is opened.
* **Re-entrant within one thread**; other threads of the process wait on a
  mutex (all threads share the one descriptor, and ``flock`` does not exclude
  holders of the same open file description).
* **The path must still name the locked directory.** After ``flock`` succeeds
  the descriptor is compared (``st_dev``, ``st_ino``) with the path; if the
  directory was deleted and recreated or renamed meanwhile, the lock is on the
  wrong inode: it is dropped and the new directory is locked instead, or
  :class:`DirectoryGone` is raised when nothing is at the path.

A stale ``.lock`` file from an older version is harmless and ignored.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref

POLL_MIN_S = 0.0001
"""Seconds before the first retry of a contended lock; each pause doubles."""
POLL_S = 0.002
"""Longest pause between tries of a contended lock. filelock's 50 ms default made a
claim wait ~50 ms per contender (fault suite: race); a fixed 2 ms pause lost up to
2 ms per hand-over (bench/bench_contention.py)."""


class DirectoryGone(FileNotFoundError):
    """Nothing (or not a directory) is at the heartbeat directory's path."""


class LockTimeout(TimeoutError):
    """The lock was not acquired within the timeout."""


class DirectoryLock:
    """An exclusive ``flock`` on ``path`` (a directory), shared by the threads of
    one process and re-entrant within each (see module doc).

    Args:
        path: the directory to lock (a symlink to a directory is followed).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._fd: int | None = None
        self._held_id: tuple[int, int] | None = None  # (st_dev, st_ino) of _fd, read at open
        self._closer: weakref.finalize[..., DirectoryLock] | None = None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting at most ``timeout`` seconds.

        Raises:
            LockTimeout: not acquired in time.
            DirectoryGone: no directory at the path.
            OSError: the directory cannot be opened (permission, not a directory).
        """
        if self._pid != os.getpid():
            self._after_fork()
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        deadline = time.monotonic() + max(0.0, timeout)
        if not self._mutex.acquire(timeout=max(0.0, timeout)):
            raise LockTimeout(self.path)
        try:
            self._flock(deadline)
        except BaseException:
            self._mutex.release()
            raise
        self._owner = me
        self._depth = 1

    def release(self) -> None:
        """Leave one level; the last one unlocks. Only the owning thread may call it.
        In a forked child it only forgets the parent's state: the descriptor is shared
        with the parent, so ``LOCK_UN`` there would unlock the parent."""
        if self._pid != os.getpid():
            self._after_fork()
            return
        if self._owner != threading.get_ident():
            raise RuntimeError("the directory lock is not held by this thread")
        self._depth -= 1
        if self._depth:
            return
        self._owner = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def close(self) -> None:
        """Close the descriptor (when not held); the next acquire reopens it."""
        if self._owner is None and self._fd is not None:
            self._fd = None
            if self._closer is not None:
                self._closer()  # closes the descriptor, once

    def _after_fork(self) -> None:
        """Forget the parent's state in a forked child: its descriptor shares the
        parent's lock (closing this copy leaves that lock alone: only ``LOCK_UN``
        or the last close drops it) and its mutex may be copied held."""
        if self._fd is not None:
            self._fd = None
            if self._closer is not None:
                self._closer()
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._owner = None
        self._depth = 0

    def _descriptor(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise DirectoryGone(exc.errno, exc.strerror, self.path) from exc
            # Closed when this lock is garbage-collected (a store per CLI call or hook).
            self._closer = weakref.finalize(self, os.close, self._fd)
            held = os.fstat(self._fd)  # an open descriptor's inode never changes
            self._held_id = (held.st_dev, held.st_ino)
        return self._fd

    def _flock(self, deadline: float) -> None:
        pause = POLL_MIN_S
        while True:
            fd = self._descriptor()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(self.path) from None
                time.sleep(pause)
                pause = min(pause * 2, POLL_S)
                continue
            if self._still_named():
                return
            # The directory was deleted/recreated or renamed: this lock guards an
            # inode nobody else will open. Drop it and lock what the path names now.
            fcntl.flock(fd, fcntl.LOCK_UN)
            self.close()
            if time.monotonic() >= deadline:
                raise LockTimeout(self.path)

    def _still_named(self) -> bool:
        """Whether the path still names the directory locked: one ``stat`` of the
        path against the descriptor's identity, read when it was opened."""
        try:
            now = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return False  # _descriptor() raises DirectoryGone on the retry
        return self._held_id == (now.st_dev, now.st_ino)

    def identity(self) -> tuple[int, int] | None:
        """``(st_dev, st_ino)`` of the directory at the path, or None when gone."""
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_dev, info.st_ino


__all__ = ["POLL_MIN_S", "POLL_S", "DirectoryGone", "DirectoryLock", "LockTimeout"]
