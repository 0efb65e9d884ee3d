"""Health checks leave no litter (issue "Fault round two", 9).

``claude mcp list``/``get`` and every Inspector call start a server that
initializes, maybe lists tools, and leaves. Such a session (clean end within
``DISCARD_WITHIN_S``, no agent tool call, not adopted) removes its record; its
``session_started`` and ``session_ended`` (``discarded: true``) events stay.
Every other session ends as before. In-process with an injected clock, and
through the real console script over stdio.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import HOST, FakeClock, make_identity
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.session.service import DISCARD_WITHIN_S, SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer


def _events(store: DirectoryStore, session_id: str) -> list[tuple[str, str | None, object]]:
    return [
        (e.event, e.reason, (e.model_extra or {}).get("discarded"))
        for e in store.read_events()
        if e.session_id == session_id
    ]


def test_a_health_check_session_leaves_no_record_but_its_events(
    make_service, heartbeat_dir: Path, clock: FakeClock
) -> None:
    service = make_service("probe-1", pid=101)
    store = DirectoryStore(heartbeat_dir)
    assert store.read_session("probe-1") is not None
    clock.advance(DISCARD_WITHIN_S - 1)
    service.beat()  # the background heartbeat is not an agent call
    service.end("disconnect")
    assert store.read_session("probe-1") is None
    assert _events(store, "probe-1") == [
        ("session_started", None, None),
        ("session_ended", "disconnect", True),
    ]
    service.end("disconnect")  # idempotent
    assert len(_events(store, "probe-1")) == 2


@pytest.mark.parametrize("reason", ["sigterm", "sigint", "sighup"])
def test_a_signal_is_a_clean_end_too(make_service, heartbeat_dir: Path, reason: str) -> None:
    make_service("probe-2", pid=102).end(reason)
    assert DirectoryStore(heartbeat_dir).read_session("probe-2") is None


def _kept(store: DirectoryStore, session_id: str, reason: str) -> None:
    record = store.read_session(session_id)
    assert record is not None and record.ended_at is not None, record
    assert record.end_reason == reason
    assert _events(store, session_id)[-1] == ("session_ended", reason, None)


def test_a_session_that_lived_the_window_is_kept(
    make_service, heartbeat_dir: Path, clock: FakeClock
) -> None:
    service = make_service("s-long", pid=103)
    clock.advance(DISCARD_WITHIN_S)
    service.end("disconnect")
    _kept(DirectoryStore(heartbeat_dir), "s-long", "disconnect")


@pytest.mark.parametrize("call", ["touch", "heartbeat", "claim", "release"])
def test_a_session_with_an_agent_tool_call_is_kept(
    make_service, heartbeat_dir: Path, call: str
) -> None:
    service = make_service("s-used", pid=104)
    if call == "claim":
        service.claim("050")
        service.release()
    else:
        getattr(service, call)()
    service.end("disconnect")
    _kept(DirectoryStore(heartbeat_dir), "s-used", "disconnect")


def test_a_session_ended_by_its_client_dying_is_kept(make_service, heartbeat_dir: Path) -> None:
    make_service("s-orphan", pid=105).end("client_exit")
    _kept(DirectoryStore(heartbeat_dir), "s-orphan", "client_exit")


def test_an_adopted_record_is_kept(make_service, heartbeat_dir: Path) -> None:
    """The start hook (or an earlier server) wrote it: the session is a real one."""
    make_service("s-adopt", pid=106).end("client_exit")
    make_service("s-adopt", pid=107).end("disconnect")
    _kept(DirectoryStore(heartbeat_dir), "s-adopt", "disconnect")


def test_a_record_another_process_adopted_meanwhile_is_never_removed(
    make_service, heartbeat_dir: Path, clock: FakeClock, probe
) -> None:
    first = make_service("s-race", pid=108)
    first.claim("043")
    store = DirectoryStore(heartbeat_dir)
    # Another server process adopts the same id while this one ends: only after a proof
    # of this one's death (a live record is never adopted), here a wrong one.
    probe.dead.add(108)
    second = SessionService(
        store,
        make_identity("s-race", 109, HOST),
        Thresholds(),
        interval=30.0,
        clock=clock,
        probe=probe,
    )
    second.start()
    first.end("disconnect")
    record = store.read_session("s-race")
    assert record is not None and record.pid == 109
    assert record.ended_at is None  # the adopter's record is not ended by the first
    ledger = store.read_claim("043")
    assert ledger is not None and (ledger.holder, ledger.holder_pid) == ("s-race", 109)
    assert not any(discarded for _, _, discarded in _events(store, "s-race"))


@pytest.mark.slow
def test_a_real_health_check_leaves_nothing_to_read(tmp_path: Path) -> None:
    """initialize + tools/list + EOF, as ``claude mcp list`` does; then a real session."""
    root = tmp_path / "project"
    root.mkdir()
    sessions = root / ".ahrena" / "workflow" / "sessions"
    began = time.monotonic()
    server = StdioServer(root)
    try:
        server.initialize()
        assert server.request("tools/list")["result"]["tools"]
        server.close_stdin()
        assert server.wait() == 0
    finally:
        server.stop()
    lived = time.monotonic() - began
    store = DirectoryStore(sessions)
    records, _ = store.list_sessions()
    kinds = [(e.event, (e.model_extra or {}).get("discarded")) for e in store.read_events()]
    if lived < DISCARD_WITHIN_S:
        assert records == []
        assert kinds == [("session_started", None), ("session_ended", True)]
    else:  # the machine was too slow for the window: a normal end is just as correct
        assert [r.end_reason for r in records] == ["disconnect"]

    used = StdioServer(root)
    try:
        used.initialize()
        assert used.call("session_info")["isError"] is False
        used.close_stdin()
        assert used.wait() == 0
    finally:
        used.stop()
    records, _ = store.list_sessions()
    assert [r.end_reason for r in records if r.ended_at is not None][-1:] == ["disconnect"]
