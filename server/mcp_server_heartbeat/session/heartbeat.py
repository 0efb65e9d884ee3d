"""The background heartbeat and the parent watch.

The heartbeat rewrites this session's record every ``interval`` seconds while
the client is connected; on a store that hears claim-change hints
(PostgreSQL LISTEN/NOTIFY) it also beats early on a hint, at most every
``MIN_BEAT_GAP_S``, so a holder whose claim was taken records the loss at
once (the hint is never the truth: the beat re-reads the ledger). A failure
(disk full, directory gone, lock busy) is counted and logged to stderr; after
``UNHEALTHY_AFTER`` failures in a row the session reports itself unhealthy in
``session_info`` — and keeps retrying: it never silently stops. The parent
watch ends the session when the MCP client process dies without closing stdin
(an orphaned stdio server).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
import anyio.to_thread

from ..domain.clock import Clock, utc_now
from ..domain.models import HeartbeatHealth
from ..host.probe import pid_exists

log = logging.getLogger(__name__)

UNHEALTHY_AFTER = 3
MIN_BEAT_GAP_S = 0.2
"""The shortest time between two beats, however many change hints arrive."""
WAIT_SLICE_S = 0.5
"""Longest single wait for a change hint in a worker thread (bounds shutdown)."""


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
    beat: Callable[[], None],
    monitor: HeartbeatMonitor,
    interval: float,
    wait: Callable[[float], bool] | None = None,
    min_gap: float = MIN_BEAT_GAP_S,
) -> None:
    """Call ``beat`` (in a worker thread) every ``interval`` seconds, forever.

    With ``wait`` (a store's ``wait_for_change(timeout) -> bool``, blocking),
    a beat also runs early when ``wait`` reports a change hint, but never
    sooner than ``min_gap`` seconds after the previous one: the beat re-syncs
    the claim against the ledger, so a holder whose claim was taken records the
    loss at once. ``wait`` runs in a worker thread in slices of at most
    :data:`WAIT_SLICE_S` seconds, abandoned on cancellation. Without ``wait``
    the loop sleeps the interval (the heartbeat directory).

    Exceptions of ``beat`` are counted by ``monitor``; the loop only ends when cancelled.
    """
    while True:
        if wait is None:
            await anyio.sleep(interval)
        else:
            await wait_or_interval(wait, interval, min_gap)
        try:
            await anyio.to_thread.run_sync(beat)
        except Exception as exc:
            monitor.failure(exc)
        else:
            monitor.success()


async def wait_or_interval(
    wait: Callable[[float], bool], interval: float, min_gap: float = MIN_BEAT_GAP_S
) -> bool:
    """Return after ``interval`` seconds, or earlier (but not before ``min_gap``
    seconds) when ``wait`` reports a change hint; True when woken by one.

    ``wait`` is called in a worker thread with at most :data:`WAIT_SLICE_S`
    seconds at a time; an exception from it counts as a timeout of its slice.
    """
    start = time.monotonic()
    deadline = start + interval
    while (left := deadline - time.monotonic()) > 0:
        piece = min(left, WAIT_SLICE_S)
        began = time.monotonic()
        try:
            woken = await anyio.to_thread.run_sync(wait, piece, abandon_on_cancel=True)
        except Exception as exc:  # a hint only: never stops the heartbeat
            log.debug("waiting for a change hint failed: %s", exc)
            woken = False
            await anyio.sleep(max(0.0, piece - (time.monotonic() - began)))
        if woken:
            await anyio.sleep(max(0.0, start + min_gap - time.monotonic()))
            return True
    return False


def change_waiter(store: object) -> Callable[[float], bool] | None:
    """The wait :func:`run_heartbeat` should use for ``store``: its
    ``wait_for_change`` when it hears change hints (``wakes_on_change``, the
    PostgreSQL store), else None (the heartbeat directory: plain interval sleeps)."""
    if getattr(store, "wakes_on_change", False):
        wait: Callable[[float], bool] = store.wait_for_change  # type: ignore[attr-defined]
        return wait
    return None


def parent_alive(client_pid: int) -> bool:
    """True while this process's parent is still ``client_pid``.

    When the client dies the kernel re-parents this process (to init or a
    subreaper), so a changed ``getppid()`` is proof the client is gone.
    """
    return os.getppid() == client_pid and pid_exists(client_pid)


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
    "MIN_BEAT_GAP_S",
    "UNHEALTHY_AFTER",
    "WAIT_SLICE_S",
    "HeartbeatMonitor",
    "change_waiter",
    "parent_alive",
    "run_heartbeat",
    "wait_or_interval",
    "watch_parent",
]
