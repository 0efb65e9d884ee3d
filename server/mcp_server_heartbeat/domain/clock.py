"""Time as this package sees it: aware UTC datetimes and their on-disk form.

Every timestamp on disk is ISO 8601 UTC with a ``Z`` suffix and millisecond
precision (``2026-11-20T23:10:24.123Z``), the form the kata-session-heartbeat
readers parse. The clock is a plain callable so tests can move time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A zero-argument callable returning the current time as an aware UTC datetime."""


def utc_now() -> datetime:
    """The system clock, as an aware UTC datetime."""
    return datetime.now(UTC)


BootClock = Callable[[], float]
"""A zero-argument callable returning seconds since boot (``CLOCK_BOOTTIME``)."""


def boottime_now() -> float:
    """Seconds since this kernel booted, including suspend (``CLOCK_BOOTTIME``).

    Wall-clock steps (NTP, ``date -s``) do not move it, so two readings on the
    same boot (same ``boot_id``) give a true elapsed time. Where the platform
    has no ``CLOCK_BOOTTIME`` this is the monotonic clock, which is only ever
    compared on this platform's own boot (see ``liveness.heartbeat_age``).
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic()
    return time.clock_gettime(boottime)


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with milliseconds and ``Z``.

    Raises:
        ValueError: ``moment`` is naive (no tzinfo); naive times are ambiguous.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must carry a timezone")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC datetime.

    A timestamp without an offset is taken as UTC (older readers wrote some).

    Raises:
        ValueError: ``text`` is not ISO 8601.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_duration(seconds: float | None) -> str:
    """A short human duration: ``12s``, ``4m05s``, ``2h03m``, ``3d04h``; '-' for None."""
    if seconds is None:
        return "-"
    total = int(max(0.0, seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


__all__ = [
    "BootClock",
    "Clock",
    "boottime_now",
    "format_duration",
    "format_utc",
    "parse_utc",
    "utc_now",
]
