"""Fault 3: a paused holder (SIGSTOP past ``stale_after``), then SIGCONT.

A real server process holds a plan; it is frozen with SIGSTOP. While its
heartbeat is fresh, ``force=true`` is refused; once it is stale another
session takes the plan with ``force=true``. After SIGCONT, the frozen server's
next heartbeat reports the loss (who, when, why) and its ``release`` with the
old fencing token is refused and changes nothing.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import psutil
import pytest

from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.identity import Identity
from mcp_server_heartbeat.host.probe import process_start_time
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer, wait_until

pytestmark = pytest.mark.slow

STALE_AFTER = 3.0


def _taker(directory: Path) -> SessionService:
    pid = os.getpid()
    service = SessionService(
        DirectoryStore(directory),
        Identity(
            session_id="taker",
            session_id_source="test",
            entrypoint="test",
            agent_version="test/1",
            branch=None,
            cwd=str(directory),
            host=socket.gethostname(),
            pid=pid,
            pid_started_at=process_start_time(pid),
            client_pid=os.getppid(),
        ),
        Thresholds(stale_after=STALE_AFTER),
        interval=0.3,
    )
    service.start()
    return service


def test_paused_holder_loses_the_plan_learns_it_and_cannot_release_it(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    directory = root / "hb"
    holder = StdioServer(
        root,
        "--dir",
        str(directory),
        "--session-id",
        "sleeper",
        "--interval",
        "0.3",
        "--stale-after",
        str(STALE_AFTER),
    )
    try:
        holder.initialize()
        claimed = holder.call("claim_plan", plan_id="043")["structuredContent"]
        assert claimed["outcome"] == "claimed"
        old_token = claimed["fencing_token"]
        taker = _taker(directory)

        refused = taker.claim("043", force=True)
        assert refused.outcome == "held_by_other"  # fresh and alive: never displaced

        # Stopped while we hold the directory lock, the holder cannot be stopped
        # inside it (its 0.3 s beat would otherwise, now and then, freeze the lock
        # for the whole test: "stayed locked").
        with taker.store.lock():
            os.kill(holder.pid, signal.SIGSTOP)
            wait_until(
                lambda: psutil.Process(holder.pid).status() == psutil.STATUS_STOPPED,
                what="the holder to stop",
            )
        try:

            def holder_is_stale() -> bool:
                views = taker.list_sessions(plan_id="043").sessions
                return any(v.session_id == "sleeper" and v.status == "stale" for v in views)

            wait_until(holder_is_stale, timeout=15, what="the paused holder to go stale")
            assert taker.claim("043").outcome == "held_by_other"  # stale alone is not enough
            taken = taker.claim("043", force=True)
            assert taken.outcome == "taken_over"
            assert taken.takeover_reason == "forced_stale"
            assert taken.previous_session == "sleeper"
            assert taken.fencing_token is not None and taken.fencing_token > old_token
        finally:
            os.kill(holder.pid, signal.SIGCONT)

        ledger_path = directory / "claims" / "043.json"
        ledger_before = ledger_path.read_bytes()

        beat = holder.call("heartbeat", activity="woke-up")["structuredContent"]
        lost = beat["claim_lost"]
        assert lost is not None
        assert lost["plan_id"] == "043"
        assert lost["taken_by"] == "taker"
        assert lost["reason"] == "forced_stale"
        assert lost["fencing_token"] == old_token
        assert lost["at"] is not None
        assert beat["session"]["plan_id"] is None

        stale = holder.call("release", plan_id="043", fencing_token=old_token)
        assert stale["structuredContent"]["outcome"] == "stale_token"
        assert stale["structuredContent"]["released"] is False
        plain = holder.call("release", plan_id="043")["structuredContent"]
        assert plain["outcome"] == "not_held"
        assert ledger_path.read_bytes() == ledger_before  # nothing changed
        ledger = taker.store.read_claim("043")
        assert ledger is not None
        assert (ledger.holder, ledger.fencing_token) == ("taker", taken.fencing_token)

        holder.close_stdin()
        assert holder.wait() == 0
        # Its clean exit does not release the taker's claim either.
        after_exit = taker.store.read_claim("043")
        assert after_exit is not None and after_exit.holder == "taker"
    finally:
        holder.stop()
