"""Shared fixtures: an injectable clock and process probe, and services over a
real heartbeat directory in a temp folder."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.identity import Identity
from mcp_server_heartbeat.host.probe import ProcessState
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
HOST = socket.gethostname()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeProbe:
    """A process probe over a set of pids declared dead (or reused)."""

    dead: set[int] = field(default_factory=set)
    reused: set[int] = field(default_factory=set)

    def __call__(
        self, pid: int, started_at: datetime | None, start_ticks: int | None = None
    ) -> ProcessState:
        if pid in self.dead:
            return ProcessState.GONE
        if pid in self.reused:
            return ProcessState.REUSED
        return ProcessState.ALIVE


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


@pytest.fixture
def heartbeat_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "sessions"
    DirectoryStore(directory).prepare()
    return directory


def make_identity(session_id: str, pid: int, host: str = HOST, client_pid: int = 1) -> Identity:
    """An identity with a made-up pid (the probe decides whether it is alive)."""
    return Identity(
        session_id=session_id,
        session_id_source="test",
        entrypoint="cli",
        agent_version="test/1",
        branch="main",
        cwd=os.getcwd(),
        host=host,
        pid=pid,
        pid_started_at=T0 - timedelta(hours=1),
        client_pid=client_pid,
    )


ServiceFactory = Callable[..., SessionService]


@pytest.fixture
def make_service(heartbeat_dir: Path, clock: FakeClock, probe: FakeProbe) -> ServiceFactory:
    """Build and start a session in the shared directory: make_service("a", pid=101)."""

    def factory(
        session_id: str,
        pid: int,
        host: str = HOST,
        client_pid: int = 1,
        stale_after: float = 300.0,
        idle_after: float = 600.0,
    ) -> SessionService:
        service = SessionService(
            DirectoryStore(heartbeat_dir, clock=clock),
            make_identity(session_id, pid, host, client_pid),
            Thresholds(stale_after=stale_after, idle_after=idle_after),
            interval=30.0,
            clock=clock,
            probe=probe,
        )
        service.start()
        return service

    return factory


@pytest.fixture
def make_runtime(tmp_path: Path, clock: FakeClock, probe: FakeProbe) -> Callable[..., object]:
    """Build a started in-process Runtime (no signals, no parent watch) for
    ``build_app``: make_runtime("sid") or make_runtime("sid", enabled=False)."""
    from mcp_server_heartbeat.host.config import Flags, resolve_config
    from mcp_server_heartbeat.runtime import Runtime
    from mcp_server_heartbeat.session.heartbeat import HeartbeatMonitor

    def factory(session_id: str = "mem-session", pid: int = 4242, enabled: bool = True):
        root = tmp_path / "project"
        (root / ".ahrena").mkdir(parents=True, exist_ok=True)
        (root / ".ahrena" / ".directives").write_text(
            f"session_tracking:\n  enabled: {'true' if enabled else 'false'}\n"
        )
        config = resolve_config(Flags(root=str(root)), {}, root)
        if not enabled:
            return Runtime(config, None, HeartbeatMonitor(clock), [], False, False)
        store = DirectoryStore(config.dir_path, clock=clock)
        store.prepare()
        service = SessionService(
            store,
            make_identity(session_id, pid),
            Thresholds(stale_after=300, idle_after=600),
            interval=30.0,
            clock=clock,
            probe=probe,
        )
        service.start()
        return Runtime(config, service, HeartbeatMonitor(clock), [], False, False, store=store)

    return factory
