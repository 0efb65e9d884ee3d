"""What a process probe answers, and its type: the facts proof of death is judged on.

The probe itself reads the machine (:mod:`mcp_server_heartbeat.host.probe`);
the rules that use its answers are pure (:mod:`.liveness`). Tests inject a
probe that kills without killing.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol


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
    """Checks a process on this host. Injected so tests can kill without killing.

    ``start_ticks`` is the recorded start in clock ticks since boot
    (:func:`process_start_ticks`); when given it decides PID reuse exactly, and
    ``started_at`` (UTC) is only the fallback for records without it."""

    def __call__(
        self, pid: int, started_at: datetime | None, start_ticks: int | None = None
    ) -> ProcessState: ...


__all__ = ["ProcessProbe", "ProcessState"]
