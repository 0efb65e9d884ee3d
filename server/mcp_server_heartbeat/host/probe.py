"""Is the recorded process provably gone?

Fail closed: the probe says ``GONE`` or ``REUSED`` only when this host can
prove the exact recorded process no longer runs — no process has the PID, the
process with the PID is a zombie (it has exited), or its start time differs
from the recorded one (the PID was reused). Anything else (alive, no
permission, no recorded start time to compare) counts as alive.

"No process has the PID" is the kernel's answer, not ``/proc``'s: with
``/proc`` mounted ``hidepid=2`` (or ``hidepid=invisible``) another user's
process has no ``/proc/<pid>``, yet it runs. So a missing ``/proc`` entry is
confirmed with ``kill(pid, 0)``, which hidepid does not affect: ``ESRCH``
means gone, ``EPERM`` (or success) means a process exists, hence alive — its
start time cannot be read, so it is not called reused either. The caller
makes sure ``pid`` is of its own PID namespace and boot
(``liveness.process_alive``). This is the rule PostgreSQL's postmaster.pid,
Qt's QLockFile and Mercurial's lock follow: break a lock only on proof of death.

One probe costs one read of ``/proc/<pid>/stat``: the state (``Z`` is a
zombie) and the start in clock ticks come from the same read. Where ``/proc``
does not exist (not Linux) psutil answers the same questions.
"""

from __future__ import annotations

import errno
import functools
import os
from datetime import UTC, datetime
from types import ModuleType

from ..domain.process import ProcessProbe, ProcessState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

START_TIME_TOLERANCE_S = 1.0
"""Start times that differ by more than this are different processes.

psutil derives a start time from boot time and clock ticks (10 ms on Linux);
a round trip through a millisecond timestamp stays well inside one second,
while PID reuse needs the PID space to wrap, which takes far longer.
"""


def _psutil() -> ModuleType:
    """psutil, imported on first use: the one-read probe of ``/proc`` does not
    need it, and the status line and hooks start without it."""
    import psutil

    return psutil


def __getattr__(name: str) -> Any:
    """``probe.psutil`` (PEP 562), imported when first asked for."""
    if name == "psutil":
        return _psutil()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def process_start_time(pid: int) -> datetime | None:
    """Start time of process ``pid`` as aware UTC, or None if it cannot be read.

    psutil's ``create_time``: boot time plus the start ticks of
    ``/proc/<pid>/stat`` over the clock-tick rate; computed here from the one
    read of that file where ``/proc`` exists, else asked of psutil."""
    if _has_proc():
        ticks = process_start_ticks(pid)
        return None if ticks is None else _start_time(ticks)
    psutil = _psutil()
    try:
        return datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)
    except (psutil.Error, OSError):
        return None


def _read_stat(pid: int) -> tuple[bytes, int] | None:
    """``(state, start ticks)`` from ``/proc/<pid>/stat`` in one read: the state
    letter (field 3: ``Z`` zombie, ``X`` dead, ...) and the start in clock ticks
    since boot (field 22); None when it cannot be read (no such entry, hidden by
    ``hidepid``, no permission, not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb", buffering=0) as stat:
            data = stat.read(4096)
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        fields = data[data.rindex(b")") + 2 :].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of
    ``/proc/<pid>/stat``), or None if it cannot be read (gone, hidden, not Linux).

    Unlike a wall-clock start time (psutil derives it from ``btime``, which the
    kernel recomputes from the realtime clock, so every clock step moves it) this
    number never changes for the life of a process: it proves PID reuse exactly
    on one boot, whatever the wall clock did."""
    found = _read_stat(pid)
    return None if found is None else found[1]


PID_T_MAX = 2**31 - 1
"""The largest value of ``pid_t``: a recorded PID above it names no process."""


def _read_boot_time() -> float:
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime"):
                    return float(line.strip().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return float(_psutil().boot_time())


@functools.cache
def boot_time() -> float:
    """The kernel's boot time (``btime``, UNIX seconds) as psutil reads it, read
    once per process. Used to turn start ticks into a wall-clock start: this
    process's ``pid_started_at``, and records without ``pid_start_ticks`` (the
    1 s-tolerance fallback). Read from ``/proc/stat`` as psutil reads it there,
    else asked of psutil."""
    return _read_boot_time()


def _start_time(ticks: int) -> datetime:
    """The wall-clock start of a process that started ``ticks`` clock ticks after
    boot, as psutil's ``create_time`` gives it (aware UTC)."""
    return datetime.fromtimestamp(ticks / _clock_ticks() + boot_time(), UTC)


@functools.cache
def _has_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def _probe_psutil(pid: int, started_at: datetime | None) -> ProcessState:
    """The rule without ``/proc`` (no start ticks there): psutil's status and
    wall-clock start time."""
    psutil = _psutil()
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return ProcessState.GONE
        created = process.create_time()
    except psutil.ZombieProcess:
        return ProcessState.GONE
    except psutil.NoSuchProcess:
        return ProcessState.GONE if not pid_exists(pid) else ProcessState.ALIVE
    except (psutil.Error, OSError):
        return ProcessState.ALIVE
    if started_at is not None and abs(created - started_at.timestamp()) > START_TIME_TOLERANCE_S:
        return ProcessState.REUSED
    return ProcessState.ALIVE


@functools.cache
def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 100


def pid_exists(pid: int) -> bool:
    """Whether the kernel has a process ``pid`` in this PID namespace, by
    ``kill(pid, 0)`` (no signal is sent): ``ESRCH`` is False; ``EPERM``, success
    or any other error is True (fail closed). Not affected by ``hidepid``."""
    if pid > PID_T_MAX:
        return False  # no process can have it (os.kill would raise OverflowError)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def probe_process(
    pid: int, started_at: datetime | None, start_ticks: int | None = None
) -> ProcessState:
    """Probe ``pid`` on this host; see the module doc for the rule.

    Costs one read of ``/proc/<pid>/stat`` (state and start ticks together);
    ``kill(pid, 0)`` only when that entry cannot be read; the boot time is read
    once per process (:func:`boot_time`) and only for the wall-clock fallback.

    Args:
        pid: the recorded process id (must be > 0; 0 and negatives are "alive",
            since they do not name one process).
        started_at: the recorded start time (aware UTC), or None if unknown;
            compared within :data:`START_TIME_TOLERANCE_S` only when
            ``start_ticks`` is not recorded (a wall-clock step moves it).
        start_ticks: the recorded start in clock ticks since boot, or None;
            compared exactly (the caller has checked it is the same boot).
    """
    if pid <= 0:
        return ProcessState.ALIVE
    if not _has_proc():
        return _probe_psutil(pid, started_at)
    found = _read_stat(pid)
    if found is None:
        # No readable entry: hidepid, no permission, or no process. Only the
        # kernel's ESRCH is proof; EPERM or success mean it runs (fail closed).
        return ProcessState.ALIVE if pid_exists(pid) else ProcessState.GONE
    state, ticks = found
    if state in (b"Z", b"X", b"x"):
        return ProcessState.GONE  # a zombie (or dead) has exited
    if start_ticks is not None:
        return ProcessState.ALIVE if ticks == start_ticks else ProcessState.REUSED
    # ``btime`` moves with every wall-clock step: a mismatch under the boot time
    # read once by this process is proof only if it holds under the kernel's
    # current one too (never a live process called reused).
    if (
        started_at is not None
        and _differs(started_at, ticks, boot_time())
        and _differs(started_at, ticks, _read_boot_time())
    ):
        return ProcessState.REUSED
    return ProcessState.ALIVE


def ancestor_pids() -> frozenset[int]:
    """The pids of this process's ancestors: its parent, the parent's parent, ...
    up to init, as ``psutil.Process().parents()`` names them, without importing
    psutil where ``/proc`` exists (the status line asks after ``/clear``, on every
    refresh).

    psutil's walk, read from ``/proc/<pid>/stat`` (parent pid and start ticks in
    one read): it stops at the lowest pid of ``/proc`` (init, included), at a
    parent with no entry (gone, pid 0, hidden by ``hidepid=2``) and at a parent
    that started after its child (its pid was reused). An ancestor whose entry
    cannot be read (no permission) gives the empty set, as psutil's
    ``AccessDenied`` did to every caller; so does any other fault. Where ``/proc``
    does not exist, psutil answers.
    """
    if not _has_proc():
        psutil = _psutil()
        try:
            return frozenset(parent.pid for parent in psutil.Process().parents())
        except (psutil.Error, OSError):
            return frozenset()
    try:
        return frozenset(_walk_up(os.getpid()))
    except (OSError, ValueError, IndexError):
        return frozenset()


def _walk_up(pid: int) -> list[int]:
    found: list[int] = []
    lowest = min(int(name) for name in os.listdir("/proc") if name.isdigit())
    child = _family(pid)
    while child is not None and pid != lowest:
        parent_pid, child_ticks = child
        parent = _family(parent_pid)
        if parent is None or parent[1] > child_ticks:
            break
        found.append(parent_pid)
        pid, child = parent_pid, parent
    return found


def _family(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start ticks)`` of ``pid`` from ``/proc/<pid>/stat``; None when
    it has no entry. Other errors (no permission) raise."""
    try:
        with open(f"/proc/{pid}/stat", "rb", buffering=0) as stat:
            data = stat.read(4096)
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def _differs(started_at: datetime, ticks: int, btime: float) -> bool:
    created = btime + ticks / _clock_ticks()
    return abs(created - started_at.timestamp()) > START_TIME_TOLERANCE_S


__all__ = [
    "START_TIME_TOLERANCE_S",
    "ProcessProbe",
    "ProcessState",
    "ancestor_pids",
    "boot_time",
    "pid_exists",
    "probe_process",
    "process_start_ticks",
    "process_start_time",
]
