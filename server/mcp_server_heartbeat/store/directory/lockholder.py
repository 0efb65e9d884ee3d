"""Who holds the heartbeat directory's lock: read from ``/proc/locks``, never recorded.

Nothing is written per acquisition (that would cost a write under the lock on
every claim and heartbeat). When the lock stays taken, the holder is looked up
afterwards: the ``FLOCK`` line of ``/proc/locks`` for the directory's device
and inode gives the PID; the session record with that PID on this host gives
the session; psutil gives the command and whether the process is stopped
(SIGSTOP, a debugger), in which case the remedy is ``kill -CONT <pid>``.
Linux only; elsewhere (or inside another PID namespace) nothing is found.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...domain.models import SessionRecord

PROC_LOCKS = Path("/proc/locks")
COMMAND_WORDS = 4
"""Words of the holder's command line shown (its program and first arguments)."""


@dataclass(frozen=True)
class LockHolder:
    """The process holding the lock, as far as it can be told.

    ``session_id`` is None when no session record on this host has the PID (a
    CLI command or hook holds it); ``command`` is None when the process is gone
    or not ours to inspect.
    """

    pid: int
    session_id: str | None = None
    command: str | None = None
    stopped: bool = False

    def describe(self) -> str:
        """``PID 1234 (session <id>, command: <cmd>; stopped: resume it with ...)``."""
        parts = []
        if self.session_id:
            parts.append(f"session {self.session_id}")
        if self.command:
            parts.append(f"command: {self.command}")
        detail = ", ".join(parts)
        if self.stopped:
            resume = f"stopped: resume it with `kill -CONT {self.pid}` or `fg`"
            detail = f"{detail}; {resume}" if detail else resume
        return f"PID {self.pid}" + (f" ({detail})" if detail else "")


def flock_holders(device: int, inode: int, locks_text: str | None = None) -> list[int]:
    """PIDs holding a ``FLOCK`` on the file ``(device, inode)`` per ``/proc/locks``
    (waiters, the ``->`` lines, are not holders). Empty when unreadable."""
    if locks_text is None:
        try:
            locks_text = PROC_LOCKS.read_text()
        except OSError:
            return []
    wanted = f"{os.major(device):02x}:{os.minor(device):02x}:{inode}"
    exact: list[int] = []
    by_inode: list[int] = []
    for line in locks_text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
        except ValueError:
            continue
        if pid <= 0:
            continue
        if fields[5] == wanted:
            exact.append(pid)
        elif fields[5].rsplit(":", 1)[-1] == str(inode):
            by_inode.append(pid)
    # overlayfs reports another device in stat() than in /proc/locks: fall back
    # to the inode alone only when nothing matched exactly.
    return exact or by_inode


def describe_process(pid: int, records: Iterable[SessionRecord]) -> LockHolder:
    """The :class:`LockHolder` for ``pid``: its session (by PID on this host), its
    command (program and first arguments; an argument that may carry a secret is
    elided: see :func:`_safe_word`) and whether it is stopped."""
    host = socket.gethostname()
    session = next(
        (r.session_id for r in records if r.pid == pid and (r.host or host) == host), None
    )
    import psutil  # only when a holder is described, not at every start

    command = None
    stopped = False
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            stopped = process.status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
            argv = process.cmdline() or [process.name()]
    except (psutil.Error, OSError):
        argv = []
    if argv:
        words = [os.path.basename(argv[0])]
        shown = argv[1:COMMAND_WORDS]
        words += [_safe_word(word, shown[i - 1] if i else "") for i, word in enumerate(shown)]
        if len(argv) > COMMAND_WORDS:
            words.append("…")
        command = " ".join(words)
    return LockHolder(pid=pid, session_id=session, command=command, stopped=stopped)


_PLAIN_WORD = re.compile(r"[\w./:,+-]{1,80}")
_SECRET_OPTION = re.compile(r"^--?[\w-]*(token|pass|secret|key|store|dsn|auth|cred)", re.I)


def _safe_word(word: str, previous: str) -> str:
    """``word`` as shown in a lock holder's command, or ``…`` when it may carry a
    secret: anything with ``=``, ``@`` or ``://`` (an assignment, a URL with a
    password), anything but plain path or option characters, and the value
    that follows an option named like a token, password, key or store URL."""
    if "=" in word or "@" in word or "://" in word or not _PLAIN_WORD.fullmatch(word):
        return "…"
    if _SECRET_OPTION.match(previous):
        return "…"
    return word


__all__ = ["LockHolder", "describe_process", "flock_holders"]
