"""Liveness classification: a table of records x clock x probe results."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import HOST, T0, FakeProbe
from mcp_server_heartbeat.domain.liveness import Thresholds, assess, health_of
from mcp_server_heartbeat.domain.models import SessionRecord
from mcp_server_heartbeat.host.identity import observer_here
from mcp_server_heartbeat.host.probe import ProcessState, probe_process

ME = observer_here("me", HOST, 500, "before")
TH = Thresholds(stale_after=300, idle_after=600)


def record(
    session_id: str = "other",
    hb_age: float | None = 10,
    call_age: float | None = 10,
    host: str = HOST,
    pid: int | None = 42,
    ended: bool = False,
    client_pid: int | None = 7,
    boot_id: str | None = ME.boot_id,
    pid_namespace: str | None = ME.pid_namespace,
) -> SessionRecord:
    def ago(seconds: float | None):
        return None if seconds is None else T0 - timedelta(seconds=seconds)

    return SessionRecord(
        session_id=session_id,
        host=host,
        pid=pid,
        client_pid=client_pid,
        started_at=T0 - timedelta(hours=2),
        last_heartbeat=ago(hb_age),
        last_call_at=ago(call_age),
        ended_at=T0 - timedelta(seconds=5) if ended else None,
        boot_id=boot_id,
        pid_namespace=pid_namespace,
    )


CASES = [
    # (name, record, probe, status, relationship, process_alive)
    ("fresh and alive", record(), FakeProbe(), "active", "other_active", True),
    ("no tool call for 10 min", record(call_age=601), FakeProbe(), "idle", "other_active", True),
    ("stale, alive", record(hb_age=301), FakeProbe(), "stale", "stale_alive", True),
    ("stale, other host", record(hb_age=301, host="elsewhere"), FakeProbe(dead={42}), "stale",
     "stale_remote", None),
    ("fresh, other host, pid 'dead' here", record(host="elsewhere"), FakeProbe(dead={42}),
     "active", "other_active", None),
    ("kill -9: fresh heartbeat, pid gone", record(), FakeProbe(dead={42}), "dead", "dead", False),
    ("pid reused: alive pid, other start time", record(hb_age=400), FakeProbe(reused={42}),
     "dead", "dead", False),
    ("ended cleanly, pid gone", record(ended=True), FakeProbe(dead={42}), "ended", "ended", None),
    ("self", record(session_id="me"), FakeProbe(), "active", "self", True),
    ("same client process", record(client_pid=500), FakeProbe(), "active", "same_conversation",
     True),
    ("the session I continue", record(session_id="before"), FakeProbe(), "active",
     "same_conversation", True),
    ("never beat", record(hb_age=None), FakeProbe(), "stale", "stale_alive", True),
    ("no pid recorded", record(pid=None, hb_age=1000), FakeProbe(dead={42}), "stale",
     "stale_remote", None),
    # A pid names a process only in one PID namespace of one boot of one host.
    ("other PID namespace, same hostname (container), pid 'dead' here",
     record(pid_namespace="pid:[1]"), FakeProbe(dead={42}), "active", "other_active", None),
    ("other boot, same hostname, pid 'dead' here", record(boot_id="another-boot"),
     FakeProbe(dead={42}), "active", "other_active", None),
    ("other namespace, stale", record(hb_age=301, pid_namespace="pid:[1]"),
     FakeProbe(dead={42}), "stale", "stale_remote", None),
    ("earlier version's record (no boot id, no namespace), pid 'dead' here",
     record(boot_id=None, pid_namespace=None), FakeProbe(dead={42}), "active", "other_active",
     None),
    ("earlier version's record, stale", record(hb_age=301, boot_id=None, pid_namespace=None),
     FakeProbe(dead={42}), "stale", "stale_remote", None),
    ("no namespace recorded", record(pid_namespace=None), FakeProbe(dead={42}), "active",
     "other_active", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rec", "probe", "status", "relationship", "alive"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classification(rec, probe, status, relationship, alive):
    result = assess(rec, T0, ME, probe, TH)
    assert (result.status, result.relationship, result.process_alive) == (
        status,
        relationship,
        alive,
    )


@pytest.mark.parametrize(
    ("age", "health"),
    [(0, "healthy"), (59.9, "healthy"), (60, "warning"), (179.9, "warning"), (180, "critical"),
     (None, "critical")],
)  # fmt: skip
def test_health_thresholds(age, health):
    assert health_of(age) == health


def test_ages_and_seconds_until_stale():
    result = assess(record(hb_age=100), T0, ME, FakeProbe(), TH)
    assert result.heartbeat_age_s == 100
    assert result.seconds_until_stale == 200
    assert result.clock_skew_s is None


def test_heartbeat_in_the_future_is_age_zero_with_skew_reported():
    result = assess(record(hb_age=-42), T0, ME, FakeProbe(), TH)
    assert result.heartbeat_age_s == 0
    assert result.clock_skew_s == 42
    assert result.status == "active"


def test_real_probe_sees_this_process_alive_and_a_reused_pid_dead():
    import os

    from mcp_server_heartbeat.host.probe import process_start_time

    started = process_start_time(os.getpid())
    assert probe_process(os.getpid(), started) is ProcessState.ALIVE
    assert probe_process(os.getpid(), started - timedelta(hours=1)) is ProcessState.REUSED


def test_real_probe_sees_an_exited_process_gone():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert probe_process(child.pid, None) is ProcessState.GONE
