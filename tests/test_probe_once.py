"""Liveness at the cost of one ``/proc`` read per process and listing.

* The real probe reads ``/proc/<pid>/stat`` once per call (state and start
  ticks from the same read) and turns to ``kill(pid, 0)`` only when that entry
  cannot be read; it never reads the boot time when the record has start ticks.
* A zombie (an exited child not yet reaped) is gone, from the state letter of
  that same read.
* One listing probes each process once (records naming the same process share
  the answer) and never probes an ended record; a second listing probes again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST, T0
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import SessionRecord
from mcp_server_heartbeat.domain.process import MemoProbe, ProcessState
from mcp_server_heartbeat.host import probe
from mcp_server_heartbeat.host.identity import observer_here
from mcp_server_heartbeat.session import readers

ME = observer_here("me", HOST)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the files the probe module opens, by path."""
    seen: Counter[str] = Counter()

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen[str(path)] += 1
        return open(path, *args, **kwargs)

    monkeypatch.setattr(probe, "open", counting_open, raising=False)
    monkeypatch.setattr(probe, "boot_time", lambda: pytest.fail("boot time read"))
    return seen


def test_a_probe_reads_proc_stat_once_and_nothing_else(opened: Counter[str]) -> None:
    pid = os.getpid()
    ticks = probe.process_start_ticks(pid)
    opened.clear()
    assert probe.probe_process(pid, None, ticks) is ProcessState.ALIVE
    assert probe.probe_process(pid, None, ticks + 1) is ProcessState.REUSED
    assert opened == Counter({f"/proc/{pid}/stat": 2})


def test_a_zombie_is_gone_from_the_same_read(opened: Counter[str]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = probe.process_start_ticks(child.pid)
    try:
        deadline = time.monotonic() + 30
        while (found := probe._read_stat(child.pid)) is not None and found[0] != b"Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        opened.clear()
        assert probe.probe_process(child.pid, None, ticks) is ProcessState.GONE
        assert opened == Counter({f"/proc/{child.pid}/stat": 1})
    finally:
        child.wait()


def test_the_wall_clock_fallback_reads_the_boot_time_once_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = Counter[str]()
    real = probe.psutil.boot_time
    monkeypatch.setattr(probe.psutil, "boot_time", lambda: reads.update(["btime"]) or real())

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path) == "/proc/stat":
            reads.update(["btime"])
        return open(path, *args, **kwargs)

    monkeypatch.setattr(probe, "open", counting_open, raising=False)
    probe.boot_time.cache_clear()
    try:
        started = probe.process_start_time(os.getpid())
        for _ in range(3):
            assert probe.probe_process(os.getpid(), started) is ProcessState.ALIVE
        assert probe.probe_process(os.getpid(), started - timedelta(hours=1)).dead
    finally:
        probe.boot_time.cache_clear()
    # a start time and four probes: one read of the boot time, and one more to
    # confirm the one mismatch (a verdict of reuse holds under the current btime)
    assert reads["btime"] == 2


def record(sid: str, pid: int, ticks: int, ended: bool = False) -> SessionRecord:
    return SessionRecord(
        session_id=sid,
        host=HOST,
        pid=pid,
        pid_start_ticks=ticks,
        last_heartbeat=T0 - timedelta(seconds=5),
        last_call_at=T0 - timedelta(seconds=5),
        ended_at=T0 if ended else None,
        boot_id=ME.boot_id,
        pid_namespace=ME.pid_namespace,
    )


class CountingProbe:
    def __init__(self) -> None:
        self.calls: Counter[tuple[int, int | None]] = Counter()

    def __call__(
        self, pid: int, started_at: datetime | None, start_ticks: int | None = None
    ) -> ProcessState:
        self.calls[(pid, start_ticks)] += 1
        return ProcessState.GONE if pid == 42 else ProcessState.ALIVE


def test_one_listing_probes_each_process_once_and_no_ended_record() -> None:
    records = [
        record("a", 7, 100),
        record("b", 7, 100),  # same process: a reconnect under a new id
        record("c", 7, 101),  # same pid, another start: another process
        record("d", 42, 100),
        record("e", 42, 100),
        record("f", 9, 100, ended=True),
    ]
    counting = CountingProbe()
    views = readers.sessions_with_liveness(
        records, T0, ME, counting, Thresholds(), include_ended=True
    )
    assert {v.session_id: v.status for v in views} == {
        "a": "active", "b": "active", "c": "active", "d": "dead", "e": "dead", "f": "ended"
    }  # fmt: skip
    assert counting.calls == Counter({(7, 100): 1, (7, 101): 1, (42, 100): 1})
    readers.sessions_with_liveness(records, T0, ME, counting, Thresholds())
    assert counting.calls == Counter({(7, 100): 2, (7, 101): 2, (42, 100): 2})


def test_filters_on_stored_fields_probe_nothing_they_leave_out() -> None:
    records = [record("a", 7, 100), record("b", 8, 100), record("c", 9, 100, ended=True)]
    records[0] = records[0].model_copy(update={"plan_id": "p1"})
    counting = CountingProbe()
    views = readers.sessions_with_liveness(records, T0, ME, counting, Thresholds(), plan_id="p1")
    assert [v.session_id for v in views] == ["a"]
    assert counting.calls == Counter({(7, 100): 1})


def test_memo_keys_on_start_time_only_without_start_ticks() -> None:
    counting = CountingProbe()
    memo = MemoProbe(counting)
    memo(7, T0, None)
    memo(7, T0, None)
    memo(7, T0 + timedelta(seconds=5), None)
    memo(7, T0, 100)
    memo(7, T0 + timedelta(seconds=5), 100)
    assert counting.calls == Counter({(7, None): 2, (7, 100): 1})


def test_the_real_probe_classifies_a_listing_of_real_processes(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = os.getpid()
    ticks = probe.process_start_ticks(me)
    assert ticks is not None
    now = datetime.now(T0.tzinfo)
    records = [
        record("me-1", me, ticks).model_copy(update={"last_heartbeat": now}),
        record("reused", me, ticks - 1).model_copy(update={"last_heartbeat": now}),
        record("gone", gone.pid, 1).model_copy(update={"last_heartbeat": now}),
    ]
    views = readers.sessions_with_liveness(records, now, ME, probe.probe_process, Thresholds())
    assert {v.session_id: v.process_alive for v in views} == {
        "me-1": True, "reused": False, "gone": False
    }  # fmt: skip


def test_a_pid_beyond_pid_t_names_no_process() -> None:
    """A recorded PID no process can have is gone, not an OverflowError that
    would fail every listing that meets the record."""
    assert probe.pid_exists(2**31) is False
    assert probe.probe_process(2**40, None) is ProcessState.GONE
