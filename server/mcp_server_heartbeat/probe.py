"""Is the recorded process provably gone?

Fail closed: the probe says ``GONE`` or ``REUSED`` only when this host can
prove the exact recorded process no longer runs — no process has the PID, the
process with the PID is a zombie (it has exited), or its start time differs
from the recorded one (the PID was reused). Anything else (alive, no
permission, no recorded start time to compare) counts as alive. This is the
rule PostgreSQL's postmaster.pid, Qt's QLockFile and Mercurial's lock follow:
break a lock only on proof of death.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Protocol

import psutil

START_TIME_TOLERANCE_S = 1.0
"""Start times that differ by more than this are different processes.

psutil derives a start time from boot time and clock ticks (10 ms on Linux);
a round trip through a millisecond timestamp stays well inside one second,
while PID reuse needs the PID space to wrap, which takes far longer.
"""


class ProcessState(enum.Enum):
    """What a probe found at a recorded (pid, start time)."""

    ALIVE = "alive"
    GONE = "gone"
    REUSED = "reused"

    @property
    def dead(self) -> bool:
        """True when this is proof of death (GONE or REUSED)."""
        return self is not ProcessState.ALIVE


class ProcessProbe(Protocol):
    """Checks a process on this host. Injected so tests can kill without killing."""

    def __call__(self, pid: int, started_at: datetime | None) -> ProcessState: ...


def process_start_time(pid: int) -> datetime | None:
    """Start time of process ``pid`` as aware UTC, or None if it cannot be read."""
    try:
        return datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)
    except (psutil.Error, OSError):
        return None


def probe_process(pid: int, started_at: datetime | None) -> ProcessState:
    """Probe ``pid`` on this host with psutil; see the module doc for the rule.

    Args:
        pid: the recorded process id (must be > 0; 0 and negatives are "alive",
            since they do not name one process).
        started_at: the recorded start time (aware UTC), or None if unknown.
    """
    if pid <= 0:
        return ProcessState.ALIVE
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return ProcessState.GONE
        created = process.create_time()
    except psutil.NoSuchProcess:
        return ProcessState.GONE
    except (psutil.Error, OSError):
        return ProcessState.ALIVE
    if started_at is not None and abs(created - started_at.timestamp()) > START_TIME_TOLERANCE_S:
        return ProcessState.REUSED
    return ProcessState.ALIVE


__all__ = [
    "START_TIME_TOLERANCE_S",
    "ProcessProbe",
    "ProcessState",
    "probe_process",
    "process_start_time",
]
