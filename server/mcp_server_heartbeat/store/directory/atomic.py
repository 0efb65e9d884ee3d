"""Atomic JSON files and guarded reads, inside one directory.

Writes: a temp file in the same directory (``.<name>.<random>.tmp``, mode 0600,
hidden from readers by its leading dot), written, fsynced, then
``os.replace``-d over the target and the directory fsynced. A reader sees the
old file or the new one, never a partial one — even after ``kill -9`` or a power
cut mid-write. ``os.replace`` renames over a symlink instead of following it.

Durability (RELIABILITY.md, "Durability policy"): a ``durable`` write (claim
ledgers, the default) is on disk when it returns. A write with
``durable=False`` (a session record replacing its previous version: routine
heartbeats) skips both fsyncs and, on Linux, is swapped in with
``renameat2(RENAME_EXCHANGE)`` and the previous version unlinked (ext4 would
flush the data of a file renamed over another; see :func:`_exchange`): it is
atomic for every process at once, and
``kill -9`` cannot lose it (the page cache survives the process), but a power
cut within the kernel's writeback delay may leave the previous version or an
empty file (reported unreadable; ``gc`` removes it). A file that did not
exist yet is always synced, file and directory: a new name is never lost once
written.

Reads: opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink is refused, a FIFO
cannot block), checked to be a regular file no larger than ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ...domain.errors import StoreError

MAX_FILE_BYTES = 1024 * 1024
"""A record larger than this (1 MiB) is reported unreadable, never loaded."""


FAILPOINTS: dict[str, Callable[[Path], None]] = {}
"""Fault-injection hooks for the fault suite, by step of :func:`write_atomic`:
``"open"`` (before the temp file is created), ``"write"``, ``"fsync"`` (where
the temp file is synced; reached by every write, durable or not) and
``"rename"`` (after the temp file is complete, before ``os.replace``). A hook
gets the target path and may raise ``OSError`` (e.g. ``ENOSPC``, ``EROFS``) or
kill the process. Empty in production: one dict lookup per step."""


def _failpoint(step: str, target: Path) -> None:
    hook = FAILPOINTS.get(step)
    if hook is not None:
        hook(target)


class UnreadableFile(Exception):
    """A file that cannot be read as a record; ``str(exc)`` says why."""


def write_atomic(directory: Path, name: str, data: bytes, durable: bool = True) -> None:
    """Replace ``directory/name`` with ``data`` atomically (see module doc).

    Args:
        durable: sync the file and the directory before returning; when False,
            only a file that did not exist yet is synced (see module doc).

    Raises:
        StoreError: the write failed (ENOSPC, EACCES, directory gone, a
            directory in the way); the previous file is untouched and no temp
            file is left behind.
    """
    tmp_path: str | None = None
    target = directory / name
    try:
        _failpoint("open", target)
        fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)  # mkstemp's 0600 is cut by the umask (e.g. 0277 -> 0400)
            view = memoryview(data)
            while view:
                _failpoint("write", target)
                view = view[os.write(fd, view) :]
            _failpoint("fsync", target)
            swap = False
            if not durable:
                swap = _regular_file(target)  # a rewrite: swapped in, not synced
                durable = not swap and not os.path.lexists(target)  # a new name: synced
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        _failpoint("rename", target)
        if swap and _exchange(tmp_path, target):
            previous, tmp_path = tmp_path, None
            with contextlib.suppress(OSError):
                os.unlink(previous)  # the previous version, now under the temp name
            return
        if swap and not os.path.lexists(target):  # it went away meanwhile: a new name
            _fsync_path(tmp_path)
            durable = True
        os.replace(tmp_path, target)
        tmp_path = None
        if durable:
            fsync_directory(directory)
    except OSError as exc:
        raise StoreError(
            f"could not write {name} in {directory}: {exc.strerror or exc}; "
            "the previous version is unchanged"
        ) from exc
    finally:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _regular_file(path: Path) -> bool:
    """True when ``path`` is a regular file itself (not a link, directory or nothing)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2: Callable[..., int] | None = None
_exchange_usable = sys.platform == "linux"


def _exchange(tmp_path: str, target: Path) -> bool:
    """Swap ``tmp_path`` and ``target`` in one atomic step (Linux
    ``renameat2(RENAME_EXCHANGE)``): ``target`` is the new file, ``tmp_path``
    the previous one (the caller unlinks it). False when the swap cannot be
    done here (no ``renameat2``, a file system without it, ``target`` gone):
    the caller renames over ``target`` instead.

    Why: ext4 flushes the data of a file renamed over another (``auto_da_alloc``,
    a guard for writers that skip ``fsync``), about 0.1 ms on an idle disk and
    milliseconds on a busy one; a swap is not a rename over a file, so an
    unsynced rewrite (a session record) costs only what it is. Readers see the
    old file or the new one, as with a rename.

    Raises:
        OSError: the swap failed for another reason (EACCES, EROFS, ...).
    """
    global _renameat2, _exchange_usable
    if not _exchange_usable:
        return False
    if _renameat2 is None:
        try:
            import ctypes

            function = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):  # no libc symbol (glibc < 2.28, musl, ...)
            _exchange_usable = False
            return False
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        function.restype = ctypes.c_int
        _renameat2 = function
    source, destination = os.fsencode(tmp_path), os.fsencode(target)
    if _renameat2(_AT_FDCWD, source, _AT_FDCWD, destination, _RENAME_EXCHANGE) == 0:
        return True
    import ctypes

    code = ctypes.get_errno()
    if code == errno.ENOENT:
        return False  # the target went away: a plain rename (synced, as a new name)
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        _exchange_usable = False  # not supported by this kernel or file system
        return False
    # Any other refusal (a FUSE or network file system answering EPERM, ...):
    # the swap is only a saving, so the plain rename decides (and raises, e.g.,
    # for a directory in the way).
    return False


def fsync_directory(directory: Path) -> None:
    """fsync a directory so a rename in it survives a crash (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_guarded(path: Path | str, limit: int = MAX_FILE_BYTES, dir_fd: int | None = None) -> bytes:
    """Read a regular file without following links or blocking.

    Args:
        path: the file; with ``dir_fd``, its name in that open directory (one
            lookup per file, and every file of a listing from the same directory).
        limit: the largest size accepted, in bytes.

    A file is read in one ``read`` of its size plus one byte (a short read is
    the end of a regular file); only a file that grew since ``fstat`` needs more.

    Raises:
        FileNotFoundError: nothing at ``path``.
        UnreadableFile: a symlink, FIFO, directory or other non-regular file,
            a file over ``limit`` bytes, or an OS error; the message says which.
    """
    try:
        fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnreadableFile("a symbolic link (never followed)") from exc
        raise UnreadableFile(f"cannot open: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise UnreadableFile(f"too large ({info.st_size} bytes; the limit is {limit})")
        wanted = info.st_size + 1
        data = os.read(fd, wanted)
        if len(data) == wanted:  # it grew since fstat: read on, up to the limit
            chunks = [data]
            remaining = limit + 1 - len(data)
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
        if len(data) > limit:
            raise UnreadableFile(f"too large (over {limit} bytes)")
        return data
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


__all__ = [
    "FAILPOINTS",
    "MAX_FILE_BYTES",
    "UnreadableFile",
    "fsync_directory",
    "read_guarded",
    "write_atomic",
]
