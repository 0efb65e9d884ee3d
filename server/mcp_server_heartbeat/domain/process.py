"""What a process probe answers, and its type: the facts proof of death is judged on.

The probe itself reads the machine (:mod:`mcp_server_heartbeat.host.probe`);
the rules that use its answers are pure (:mod:`.liveness`). Tests inject a
probe that kills without killing.
"""

from __future__ import annotations

import enum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Protocol
else:  # a typing Protocol for type checkers, a plain base class at run time: the
    Protocol = object  # status line and ``status`` load this module without typing


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


class MemoProbe:
    """A :class:`ProcessProbe` that asks ``probe`` once per recorded process
    within one listing: records naming the same ``(pid, start_ticks,
    started_at)`` get the first answer.

    Only for one listing (one reading of "now"): a process alive at the first
    probe may die a moment later, and a listing that probes it again later
    would see that. The caller probes only records of its own host, boot and
    PID namespace (``liveness.process_alive``), so these three complete the
    process identity (host, boot, PID namespace, pid, start).
    """

    def __init__(self, probe: ProcessProbe) -> None:
        self._probe = probe
        self._answers: dict[tuple[int, int | None, datetime | None], ProcessState] = {}

    def __call__(
        self, pid: int, started_at: datetime | None, start_ticks: int | None = None
    ) -> ProcessState:
        """The answer of the wrapped probe for this process, asked at most once."""
        key = (pid, start_ticks, None if start_ticks is not None else started_at)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = self._probe(pid, started_at, start_ticks)
        return found


__all__ = ["MemoProbe", "ProcessProbe", "ProcessState"]
