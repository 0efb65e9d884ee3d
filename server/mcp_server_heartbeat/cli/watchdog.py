"""The hooks' watchdog: a command that must never hold up Claude Code or git
gives up after a deadline (``SIGALRM``), whatever it is waiting for.

Used by the Claude Code hooks (:mod:`.light_hook`, :mod:`.hooks`) and the git
hooks (:mod:`.git_fast`); each decides what giving up means (exit 0, let the
commit through). Main thread only (signals).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Deadline(BaseException):
    """Raised when the deadline passes; a BaseException so no library swallows it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`Deadline` in the block once ``seconds`` have passed; the
    previous ``SIGALRM`` handler is restored on the way out."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def disarm() -> None:
    """Stop the running deadline: what follows must run to its end."""
    signal.setitimer(signal.ITIMER_REAL, 0)


__all__ = ["Deadline", "deadline", "disarm"]
