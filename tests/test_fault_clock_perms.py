"""Faults 7 and 8: clocks that disagree, and permissions whatever the umask.

Clocks: a record whose ``last_heartbeat`` lies in the future (another process's
clock ahead) has no negative age and the skew is reported; it is fresh while
the skew is within ``stale_after`` and stale beyond it (its writer's clock
cannot vouch for it), never dead; this session's own age comes from a
monotonic clock, so stepping the wall clock back or forward neither freezes
nor ages it (both clocks injected). Ages of other sessions on this boot come
from ``CLOCK_BOOTTIME`` (tests/test_clock_steps.py).

Permissions: a new heartbeat directory is 0700 (and ``claims/``), every file
0600, under any umask; an existing directory that is group- or world-writable
is used, with a warning in ``session_info`` and on stderr.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from conftest import HOST, T0, FakeClock, FakeProbe, make_identity
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import SessionRecord
from mcp_server_heartbeat.host.config import Flags
from mcp_server_heartbeat.host.identity import read_boot_id, read_pid_namespace
from mcp_server_heartbeat.mcp import server as app_module
from mcp_server_heartbeat.runtime import open_runtime
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer

# -- clocks -----------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _write_ahead(store: DirectoryStore, session_id: str, host: str, pid: int, ahead: float) -> None:
    when = T0 + timedelta(seconds=ahead)
    store.write_session(
        SessionRecord(
            session_id=session_id,
            host=host,
            boot_id=read_boot_id(),
            pid_namespace=read_pid_namespace(),
            pid=pid,
            plan_id="ahead-plan",
            fencing_token=1,
            started_at=when,
            last_heartbeat=when,
            last_call_at=when,
        )
    )


@pytest.mark.parametrize("host", [HOST, "other-host"])
def test_heartbeat_from_a_clock_ahead_has_no_negative_age_and_is_not_dead(
    make_service: Any, heartbeat_dir: Path, clock: FakeClock, host: str
) -> None:
    me = make_service("me", pid=100)
    _write_ahead(DirectoryStore(heartbeat_dir), "ahead", host, pid=4242, ahead=200)
    view = next(v for v in me.list_sessions().sessions if v.session_id == "ahead")
    assert view.heartbeat_age_s == 0
    assert view.clock_skew_s == 200
    assert view.status == "active"
    assert view.seconds_until_stale == 300
    assert view.process_alive is (True if host == HOST else None)
    clock.advance(150)  # our clock moves on; theirs is still ahead
    view = next(v for v in me.list_sessions().sessions if v.session_id == "ahead")
    assert (view.heartbeat_age_s, view.clock_skew_s, view.status) == (0, 50, "active")


@pytest.mark.parametrize("host", [HOST, "other-host"])
def test_heartbeat_ahead_by_more_than_stale_after_is_stale_not_dead(
    make_service: Any, heartbeat_dir: Path, clock: FakeClock, host: str
) -> None:
    me = make_service("me", pid=100)
    _write_ahead(DirectoryStore(heartbeat_dir), "ahead", host, pid=4242, ahead=3600)
    view = next(v for v in me.list_sessions().sessions if v.session_id == "ahead")
    assert (view.heartbeat_age_s, view.clock_skew_s) == (0, 3600)
    assert (view.status, view.seconds_until_stale, view.health) == ("stale", 0, "critical")
    assert view.process_alive is (True if host == HOST else None)
    clock.advance(1000)
    view = next(v for v in me.list_sessions().sessions if v.session_id == "ahead")
    assert (view.heartbeat_age_s, view.clock_skew_s, view.status) == (0, 2600, "stale")


def test_own_age_is_monotonic_when_the_wall_clock_steps(heartbeat_dir: Path) -> None:
    wall = FakeClock()
    mono = FakeMonotonic()
    me = SessionService(
        DirectoryStore(heartbeat_dir),
        make_identity("me", pid=100),
        Thresholds(stale_after=300.0),
        interval=30.0,
        clock=wall,
        probe=FakeProbe(),
        monotonic=mono,
    )
    me.start()
    wall.advance(-3600)  # NTP steps the clock back an hour
    mono.now += 5
    view = me.view_self()
    assert view.heartbeat_age_s == 5
    assert view.clock_skew_s is None
    wall.advance(86_400)  # ... then a day forward
    mono.now += 5
    view = me.view_self()
    assert (view.heartbeat_age_s, view.status) == (10, "active")
    mono.now += 400  # real time passes without a beat: stale, whatever the wall says
    assert me.view_self().status == "stale"
    me.beat()
    mono.now += 1
    assert me.view_self().heartbeat_age_s == 1


def test_a_holder_whose_clock_is_ahead_by_more_than_stale_after_yields_only_to_force(
    make_service: Any, heartbeat_dir: Path, clock: FakeClock
) -> None:
    """A heartbeat stamped far in the reader's future proves nothing about now: it is
    stale (not dead), so it is taken over only with force."""
    store = DirectoryStore(heartbeat_dir)
    holder = make_service("holder", pid=200, host="other-host")
    holder.claim("p")
    record = store.read_session("holder")
    assert record is not None
    future = T0 + timedelta(hours=2)
    store.write_session(record.model_copy(update={"last_heartbeat": future}))
    claimant = make_service("claimant", pid=201)
    clock.advance(3000)  # the record is 4200 s in our future
    result = claimant.claim("p")
    assert result.outcome == "held_by_other"
    assert result.holder is not None and result.holder.clock_skew_s == 4200
    assert result.holder.status == "stale"
    result = claimant.claim("p", force=True)
    assert (result.outcome, result.takeover_reason) == ("taken_over", "forced_stale")


# -- permissions ------------------------------------------------------------------


@pytest.fixture
def umask_restored() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory)): stat.S_IMODE(p.lstat().st_mode)
        for p in [directory, *directory.rglob("*")]
    }


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022, 0o077, 0o277])
def test_new_directory_is_0700_and_files_0600_whatever_the_umask(
    tmp_path: Path, make_identity_pid: int, umask: int, umask_restored: None
) -> None:
    directory = tmp_path / "deep" / "hb"
    os.umask(umask)
    store = DirectoryStore(directory)
    assert store.prepare() == []
    service = SessionService(
        store, make_identity("me", pid=make_identity_pid), Thresholds(), interval=30.0
    )
    service.start()
    service.claim("p")
    service.heartbeat(activity="x")
    service.release("p")
    service.end("done")
    modes = _modes(directory)
    for name, mode in modes.items():
        path = directory / name if name != "." else directory
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{name}: {mode:o} under umask {umask:03o}"
    assert {".", "claims", ".gitignore", "me.json", "claims/p.json"} <= set(modes)
    assert ".lock" not in modes  # the lock is flock(2) on the directory itself


@pytest.fixture
def make_identity_pid() -> int:
    return os.getpid()


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o755 | stat.S_ISVTX | 0o002])
@pytest.mark.anyio
async def test_group_or_world_writable_directory_is_used_with_a_warning(
    tmp_path: Path, mode: int
) -> None:
    root = tmp_path / "project"
    directory = root / "hb"
    directory.mkdir(parents=True)
    os.chmod(directory, mode)
    runtime = open_runtime(
        Flags(root=str(root), dir="hb", session_id="me"), {}, root, probe=FakeProbe()
    )
    runtime.handle_signals = False
    runtime.watch_parent = False
    assert (directory / "me.json").is_file()  # used
    assert stat.S_IMODE(directory.stat().st_mode) == mode  # not silently changed
    async with Client(app_module.build_app(runtime)) as client:
        info = (await client.call_tool("session_info", {})).structured_content
    warnings = " ".join(info["warnings"])
    assert "writable by other users" in warnings
    assert f"chmod 700 {directory}" in warnings


def test_group_writable_directory_warning_reaches_stderr(tmp_path: Path) -> None:
    root = tmp_path / "project"
    directory = root / "hb"
    directory.mkdir(parents=True)
    os.chmod(directory, 0o775)
    server = StdioServer(root, "--dir", str(directory), "--session-id", "me")
    try:
        server.initialize()
        server.close_stdin()
        assert server.wait() == 0
        assert "warning:" in server.stderr()
        assert "writable by other users" in server.stderr()
    finally:
        server.stop()


def test_private_directory_gets_no_warning(tmp_path: Path) -> None:
    directory = tmp_path / "hb"
    directory.mkdir(mode=0o700)
    assert DirectoryStore(directory).prepare() == []
