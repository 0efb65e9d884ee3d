"""Ages that clock steps cannot move.

On the reader's own boot a heartbeat's age is ``CLOCK_BOOTTIME`` now minus the
``last_heartbeat_boottime`` recorded with it, so a wall-clock step (NTP,
``date -s``) neither makes a fresh holder stale nor keeps a stale one fresh.
Across boots and hosts the age is by UTC and a heartbeat stamped in the
reader's future by more than ``stale_after`` is stale, with the skew reported.
Both clocks are injected; the claim path, ``list_sessions``, the ``status``
snapshot and the status line all judge with ``liveness.assess``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from conftest import HOST, T0, FakeClock, FakeProbe, make_identity
from mcp_server_heartbeat.cli.statusline import line_for
from mcp_server_heartbeat.domain.clock import boottime_now
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.identity import observer_here
from mcp_server_heartbeat.session.observe import read_snapshot
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.light import scan
from mcp_server_heartbeat.store.directory.store import DirectoryStore

TH = Thresholds(stale_after=300.0, idle_after=600.0)


class FakeBoottime:
    """CLOCK_BOOTTIME that only moves when told to (wall-clock steps do not move it)."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _service(
    directory: Path, session_id: str, pid: int, wall: FakeClock, boot: FakeBoottime | None
) -> SessionService:
    service = SessionService(
        DirectoryStore(directory),
        make_identity(session_id, pid, client_pid=pid + 1000),
        TH,
        interval=30.0,
        clock=wall,
        probe=FakeProbe(),
        boottime=boot,
    )
    service.start()
    return service


def test_a_wall_clock_step_forward_does_not_make_a_fresh_holder_stale(
    heartbeat_dir: Path,
) -> None:
    wall, boot = FakeClock(), FakeBoottime()
    holder = _service(heartbeat_dir, "holder", 200, wall, boot)
    holder.claim("043")
    record = DirectoryStore(heartbeat_dir).read_session("holder")
    assert record is not None and record.last_heartbeat_boottime == 5000.0
    claimant = _service(heartbeat_dir, "claimant", 201, wall, boot)
    wall.advance(600)  # NTP steps the wall clock 10 minutes forward ...
    boot.now += 1  # ... while one second really passes

    result = claimant.claim("043", force=True)
    assert result.outcome == "held_by_other", result.message
    assert result.holder is not None
    assert (result.holder.status, result.holder.heartbeat_age_s) == ("active", 1)
    assert result.holder.clock_skew_s is None

    views = {v.session_id: v for v in claimant.list_sessions().sessions}
    assert (views["holder"].status, views["holder"].heartbeat_age_s) == ("active", 1)
    observer = observer_here(None, HOST, boottime=boot)
    snapshot = read_snapshot(DirectoryStore(heartbeat_dir), wall(), observer, FakeProbe(), TH)
    status = {view.session_id: (view.status, view.heartbeat_age_s) for view in snapshot.sessions}
    assert status["holder"] == ("active", 1)
    assert snapshot.claims[0].holder_status == "active"


def test_a_wall_clock_step_back_does_not_keep_a_silent_holder_fresh(heartbeat_dir: Path) -> None:
    wall, boot = FakeClock(), FakeBoottime()
    holder = _service(heartbeat_dir, "holder", 200, wall, boot)
    holder.claim("043")
    claimant = _service(heartbeat_dir, "claimant", 201, wall, boot)
    wall.advance(-3600)  # the wall clock steps an hour back ...
    boot.now += 400  # ... and the holder has not beaten for 400 s
    refused = claimant.claim("043")
    assert refused.outcome == "held_by_other"
    assert refused.holder is not None
    assert (refused.holder.status, refused.holder.heartbeat_age_s) == ("stale", 400)
    taken = claimant.claim("043", force=True)
    assert (taken.outcome, taken.takeover_reason) == ("taken_over", "forced_stale")


def test_another_boot_is_judged_by_utc_and_a_future_stamp_is_stale(heartbeat_dir: Path) -> None:
    """Same hostname, another boot (a reboot, or another machine with this name):
    the boot-time clocks are not comparable, UTC is used, the skew is reported."""
    wall, boot = FakeClock(), FakeBoottime()
    store = DirectoryStore(heartbeat_dir)
    holder = _service(heartbeat_dir, "holder", 200, wall, boot)
    holder.claim("043")
    record = store.read_session("holder")
    assert record is not None
    store.write_session(
        record.model_copy(
            update={
                "boot_id": "00000000-0000-0000-0000-000000000000",
                "last_heartbeat": T0 + timedelta(seconds=301),  # 301 s in our future
                "last_heartbeat_boottime": boot.now,  # would say "0 s old" if compared
            }
        )
    )
    claimant = _service(heartbeat_dir, "claimant", 201, wall, boot)
    refused = claimant.claim("043")
    assert refused.outcome == "held_by_other"
    view = refused.holder
    assert view is not None
    assert (view.status, view.heartbeat_age_s, view.clock_skew_s) == ("stale", 0, 301)
    assert (view.process_alive, view.seconds_until_stale, view.health) == (None, 0, "critical")
    taken = claimant.claim("043", force=True)
    assert (taken.outcome, taken.takeover_reason) == ("taken_over", "forced_stale")


def test_a_future_stamp_within_stale_after_is_fresh_with_skew(heartbeat_dir: Path) -> None:
    wall = FakeClock()
    store = DirectoryStore(heartbeat_dir)
    holder = _service(heartbeat_dir, "holder", 200, wall, None)
    record = store.read_session("holder")
    assert record is not None and record.last_heartbeat_boottime is None
    store.write_session(
        record.model_copy(
            update={"host": "elsewhere", "last_heartbeat": T0 + timedelta(seconds=299)}
        )
    )
    reader = _service(heartbeat_dir, "reader", 201, wall, None)
    view = next(v for v in reader.list_sessions().sessions if v.session_id == "holder")
    assert (view.status, view.heartbeat_age_s, view.clock_skew_s) == ("active", 0, 299)
    assert holder.session_id == "holder"


def test_the_status_line_uses_the_boot_clock_too(heartbeat_dir: Path) -> None:
    """The status line's pydantic-free records carry the boot-time fields: a wall
    clock 10 minutes ahead of the records does not make them stale there either."""
    wall = FakeClock()
    me = _service(heartbeat_dir, "me", 200, wall, boottime_now)
    other = _service(heartbeat_dir, "other", 201, wall, boottime_now)
    other.claim("043")
    me.claim("044")
    ahead = T0 + timedelta(minutes=10)
    line = line_for(lambda: scan(heartbeat_dir), "me", ahead, 300.0, 600.0, HOST, FakeProbe())
    assert line.startswith("♥ 044 #1 · beat 0s ago · 1 other live"), line
