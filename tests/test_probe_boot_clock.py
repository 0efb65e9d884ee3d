"""The wall-clock fallback of the probe after a clock step.

A record without ``pid_start_ticks`` (written by an earlier version, or by a
writer that could not read its ticks) is judged by its wall-clock start:
``btime + ticks / HZ``, the formula psutil's ``create_time`` uses and every
writer used to compute ``pid_started_at``. ``btime`` (``/proc/stat``) moves
with every wall-clock step; psutil reads it at each call. The probe now
reads it once per process (``functools.cache``); a mismatch under that value
is proof only if it holds under the current ``btime`` too, so a process
started after a step is never called reused.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from typing import Any

import pytest

from mcp_server_heartbeat.domain.process import ProcessState
from mcp_server_heartbeat.host import probe


def test_a_live_process_started_after_a_clock_step_is_not_called_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    btime = [1_700_000_000]
    real_open = open

    def fake_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path) == "/proc/stat":
            return io.BytesIO(f"cpu 0 0 0\nbtime {btime[0]}\n".encode())
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(probe, "open", fake_open, raising=False)
    probe.boot_time.cache_clear()
    try:
        me = os.getpid()
        ticks = probe.process_start_ticks(me)
        assert ticks is not None
        # The server's first look at any record reads the boot time.
        probe.probe_process(me, probe.process_start_time(me))
        btime[0] += 30  # the wall clock is stepped 30 s forward (NTP, date -s)
        # A writer starting now records its start as psutil computes it: the
        # boot time as the kernel reports it now, plus its start ticks.
        recorded = datetime.fromtimestamp(btime[0] + ticks / os.sysconf("SC_CLK_TCK"), UTC)
        assert probe.probe_process(me, recorded) is ProcessState.ALIVE
    finally:
        probe.boot_time.cache_clear()
