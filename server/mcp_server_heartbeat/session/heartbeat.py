"""The background heartbeat and the parent watch.

The heartbeat rewrites this session's record every ``interval`` seconds while
the client is connected. A failure (disk full, directory gone, lock busy) is
counted and logged to stderr; after ``UNHEALTHY_AFTER`` failures in a row the
session reports itself unhealthy in ``session_info`` — and keeps retrying: it
never silently stops. The parent watch ends the session when the MCP client
process dies without closing stdin (an orphaned stdio server).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
import anyio.to_thread
import psutil

from ..domain.clock import Clock, utc_now
from ..domain.models import HeartbeatHealth

log = logging.getLogger(__name__)

UNHEALTHY_AFTER = 3


class HeartbeatMonitor:
    """Counts the background heartbeat's successes and failures (thread-safe)."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self.last_success: datetime | None = None
        self.consecutive_failures = 0
        self.last_error: str | None = None

    def success(self) -> None:
        """Record a successful beat; a run of failures ends."""
        with self._guard:
            if self.consecutive_failures >= UNHEALTHY_AFTER:
                log.warning("heartbeat recovered after %d failures", self.consecutive_failures)
            self.last_success = self._clock()
            self.consecutive_failures = 0
            self.last_error = None

    def failure(self, error: BaseException) -> None:
        """Record a failed beat and log it to stderr."""
        with self._guard:
            self.consecutive_failures += 1
            self.last_error = str(error)
            count = self.consecutive_failures
        if count == UNHEALTHY_AFTER:
            log.error("heartbeat failed %d times in a row, session unhealthy: %s", count, error)
        else:
            log.warning("heartbeat failed (%d in a row): %s", count, error)

    @property
    def healthy(self) -> bool:
        """False after ``UNHEALTHY_AFTER`` consecutive failures."""
        return self.consecutive_failures < UNHEALTHY_AFTER

    def snapshot(self) -> HeartbeatHealth:
        """The health as ``session_info`` reports it."""
        with self._guard:
            return HeartbeatHealth(
                last_success=self.last_success,
                consecutive_failures=self.consecutive_failures,
                healthy=self.consecutive_failures < UNHEALTHY_AFTER,
                last_error=self.last_error,
            )


async def run_heartbeat(
    beat: Callable[[], None], monitor: HeartbeatMonitor, interval: float
) -> None:
    """Call ``beat`` (in a worker thread) every ``interval`` seconds, forever.

    Exceptions are counted by ``monitor``; the loop only ends when cancelled.
    """
    while True:
        await anyio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(beat)
        except Exception as exc:
            monitor.failure(exc)
        else:
            monitor.success()


def parent_alive(client_pid: int) -> bool:
    """True while this process's parent is still ``client_pid``.

    When the client dies the kernel re-parents this process (to init or a
    subreaper), so a changed ``getppid()`` is proof the client is gone.
    """
    return os.getppid() == client_pid and psutil.pid_exists(client_pid)


async def watch_parent(
    client_pid: int,
    on_gone: Callable[[], Awaitable[None]],
    period: float,
    alive: Callable[[int], bool] = parent_alive,
) -> None:
    """Poll every ``period`` seconds; await ``on_gone`` once the client is gone."""
    while alive(client_pid):
        await anyio.sleep(period)
    log.warning("the MCP client (pid %d) is gone without closing stdin; ending", client_pid)
    await on_gone()


__all__ = [
    "UNHEALTHY_AFTER",
    "HeartbeatMonitor",
    "parent_alive",
    "run_heartbeat",
    "watch_parent",
]
