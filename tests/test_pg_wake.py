"""Wake-ups on claim changes (issue item 9): LISTEN/NOTIFY as a hint only.

The background heartbeat waits for a change hint or its interval, whichever
comes first, and beats early on a hint (never more often than every
``MIN_BEAT_GAP_S``): a holder whose claim was taken records the loss at once,
not an interval later. The listener survives its backend being terminated.
The PostgreSQL tests need ``HEARTBEAT_TEST_DSN`` (skip otherwise; fail when CI=true).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from conftest import HOST, FakeProbe, make_identity
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.session.heartbeat import (
    HeartbeatMonitor,
    change_waiter,
    run_heartbeat,
    wait_or_interval,
)
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from mcp_server_heartbeat.store.memory import MemoryStore
from pg_support import make_store, test_dsn

LONG_INTERVAL = 30.0


@pytest.fixture
def cleanups() -> Iterator[list[Callable[[], None]]]:
    done: list[Callable[[], None]] = []
    yield done
    while done:
        done.pop()()


def _session(store: Any, session_id: str, pid: int, probe: FakeProbe | None = None) -> Any:
    service = SessionService(
        store,
        make_identity(session_id, pid, HOST),
        Thresholds(stale_after=300.0, idle_after=600.0),
        interval=LONG_INTERVAL,
        probe=probe or FakeProbe(),
    )
    service.start()
    return service


# -- the loop, backend-neutral ---------------------------------------------------------


def test_stores_without_hints_sleep_the_timeout_and_report_no_change(tmp_path: Path) -> None:
    for store in (MemoryStore(), DirectoryStore(tmp_path / "hb")):
        assert store.wakes_on_change is False
        began = time.monotonic()
        assert store.wait_for_change(0.1) is False
        assert time.monotonic() - began >= 0.1


def test_only_a_store_that_hears_hints_changes_the_loop(tmp_path: Path, cleanups) -> None:
    assert change_waiter(MemoryStore()) is None
    assert change_waiter(DirectoryStore(tmp_path / "hb")) is None  # interval sleeps, as before
    if os.environ.get("HEARTBEAT_TEST_DSN"):
        store = make_store(cleanups)
        assert change_waiter(store) == store.wait_for_change


def test_a_hint_ends_the_wait_early_but_not_before_the_minimum_gap() -> None:
    calls: list[float] = []

    def wait(timeout: float) -> bool:
        calls.append(timeout)
        return len(calls) == 2  # woken in the second slice

    async def main() -> tuple[bool, float]:
        began = time.monotonic()
        woken = await wait_or_interval(wait, LONG_INTERVAL, min_gap=0.3)
        return woken, time.monotonic() - began

    woken, took = anyio.run(main)
    assert woken is True
    assert 0.3 <= took < 5.0  # far from the 30 s interval, never under the gap
    assert all(0 < timeout <= 0.5 for timeout in calls)  # short slices: shutdown stays quick


def test_a_failing_wait_is_a_timeout_and_the_interval_still_holds() -> None:
    def wait(timeout: float) -> bool:
        raise OSError("listener broken")

    async def main() -> tuple[bool, float]:
        began = time.monotonic()
        woken = await wait_or_interval(wait, 0.6)
        return woken, time.monotonic() - began

    woken, took = anyio.run(main)
    assert woken is False and took >= 0.6


def test_a_storm_of_hints_never_beats_more_often_than_the_minimum_gap() -> None:
    beats: list[float] = []

    async def main() -> None:
        with anyio.move_on_after(1.0):
            await run_heartbeat(
                lambda: beats.append(time.monotonic()),
                HeartbeatMonitor(),
                LONG_INTERVAL,
                wait=lambda timeout: True,  # woken every time
                min_gap=0.2,
            )

    anyio.run(main)
    assert 2 <= len(beats) <= 6
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert all(gap >= 0.19 for gap in gaps), gaps


def test_cancelling_the_loop_mid_wait_returns_at_once() -> None:
    release = threading.Event()

    def wait(timeout: float) -> bool:
        release.wait(timeout)
        return False

    async def main() -> float:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_heartbeat, lambda: None, HeartbeatMonitor(), LONG_INTERVAL, wait)
            await anyio.sleep(0.1)
            began = time.monotonic()
            tasks.cancel_scope.cancel()
        return time.monotonic() - began

    try:
        assert anyio.run(main) < 1.0
    finally:
        release.set()


# -- PostgreSQL ------------------------------------------------------------------------


def _wait_until(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_holder_whose_claim_is_taken_is_woken_and_records_the_loss_at_once(cleanups):
    store_a = make_store(cleanups)
    store_b = make_store(cleanups, schema=store_a.schema)
    assert store_a.wakes_on_change is True
    a = _session(store_a, "a", 101)
    assert a.claim("045").fencing_token == 1
    assert store_a.wait_for_change(0) is False  # LISTEN is open before the change
    monitor = HeartbeatMonitor()
    beats: list[float] = []

    def beat() -> None:
        a.beat()
        beats.append(time.monotonic())

    async def main() -> tuple[float, Any]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_heartbeat, beat, monitor, LONG_INTERVAL, store_a.wait_for_change)
            b = _session(store_b, "b", 102, FakeProbe(dead={101}))  # proof of a's death
            taken_at = time.monotonic()
            granted = await anyio.to_thread.run_sync(b.claim, "045")
            assert (granted.outcome, granted.fencing_token) == ("taken_over", 2), granted
            with anyio.fail_after(10):  # far below the 30 s interval
                while a.claim_lost is None:
                    await anyio.sleep(0.02)
            lost_after = time.monotonic() - taken_at
            tasks.cancel_scope.cancel()
        return lost_after, a.heartbeat()

    lost_after, result = anyio.run(main)
    assert lost_after < 5.0, lost_after  # within ~1 s unloaded; never the interval
    assert result.claim_lost is not None
    assert (result.claim_lost.plan_id, result.claim_lost.taken_by) == ("045", "b")
    assert len(beats) >= 1 and monitor.consecutive_failures == 0
    assert [e.event for e in store_a.read_events() if e.event == "claim_lost"] == ["claim_lost"]


def test_the_listener_recovers_after_its_backend_is_terminated(cleanups):
    import psycopg

    dsn = test_dsn()
    name = "hbwake_" + uuid.uuid4().hex[:8]
    store_a = make_store(cleanups)
    store_a._url = f"{dsn}{'&' if '?' in dsn else '?'}application_name={name}"
    store_b = make_store(cleanups, schema=store_a.schema)
    other = make_store(cleanups, project="other-project", schema=store_a.schema)
    b = _session(store_b, "b", 102)
    assert store_a.wait_for_change(0) is False  # listening

    with psycopg.connect(dsn, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    assert killed, "the LISTEN backend was not found"

    began = time.monotonic()
    assert store_a.wait_for_change(1.0) is False  # the fault is a timeout, no exception
    assert time.monotonic() - began < 3.0
    assert store_a.wait_for_change(1.0) is True  # reconnected: re-read, changes were missed

    o = _session(other, "o", 103)
    o.claim("045")  # another project's change on the same channel: not ours
    assert store_a.wait_for_change(0.5) is False

    changed = threading.Thread(target=b.claim, args=("045",))
    changed.start()
    try:
        assert _wait_until(lambda: store_a.wait_for_change(0.5), within=10.0)
    finally:
        changed.join(10)
