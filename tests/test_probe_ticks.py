"""Proof of death that a wall-clock step cannot fake.

psutil derives a process's start time from the kernel's ``btime``, which the
kernel recomputes from the realtime clock: after a step of the wall clock
(NTP ``makestep``, a VM resumed, ``date -s``) every running process seems to
have started at another time, and a probe that compares wall-clock start times
calls every live holder "reused", i.e. dead. The start in clock ticks since
boot never moves; the probe compares that exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from mcp_server_heartbeat.host import probe
from mcp_server_heartbeat.host.identity import detect_identity
from mcp_server_heartbeat.host.probe import (
    ProcessState,
    probe_process,
    process_start_ticks,
    process_start_time,
)


@pytest.fixture
def child():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_start_ticks_are_read_from_proc_and_never_change(child):
    ticks = process_start_ticks(child.pid)
    assert isinstance(ticks, int) and ticks > 0
    assert process_start_ticks(child.pid) == ticks
    assert process_start_ticks(os.getpid()) != ticks


def test_a_wall_clock_step_does_not_make_a_live_process_look_reused(child, monkeypatch):
    started_at = process_start_time(child.pid)
    ticks = process_start_ticks(child.pid)
    real_boot_time = probe.boot_time()
    # The kernel's btime after the wall clock was stepped forward by 5 s.
    monkeypatch.setattr(probe, "boot_time", lambda: real_boot_time + 5)
    monkeypatch.setattr(probe, "_read_boot_time", lambda: real_boot_time + 5)
    assert probe_process(child.pid, started_at) is ProcessState.REUSED  # the old rule's error
    assert probe_process(child.pid, started_at, ticks) is ProcessState.ALIVE


def test_another_process_under_the_pid_is_reused_by_ticks(child):
    assert probe_process(child.pid, None, process_start_ticks(child.pid) + 1) is (
        ProcessState.REUSED
    )
    assert probe_process(child.pid, datetime.now(UTC), process_start_ticks(child.pid)) is (
        ProcessState.ALIVE
    )


def test_a_gone_process_is_gone_whatever_its_ticks(child):
    ticks = process_start_ticks(child.pid)
    child.kill()
    child.wait()
    assert probe_process(child.pid, None, ticks) is ProcessState.GONE


def test_a_session_records_its_start_ticks(tmp_path):
    identity = detect_identity(None, {}, tmp_path)
    assert identity.pid_start_ticks == process_start_ticks(os.getpid())
