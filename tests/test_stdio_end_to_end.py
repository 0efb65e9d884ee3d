"""End to end over real stdio: the console script as subprocesses, kill -9,
signals, stdin EOF and an orphaned server whose client died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from stdio_client import CONSOLE_SCRIPT, StdioServer, clean_env, run_console, wait_until

FAST = ("--interval", "0.5", "--stale-after", "5")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


@pytest.fixture
def servers():
    started: list[StdioServer] = []
    yield started
    for server in started:
        server.stop()


def start(root: Path, servers: list[StdioServer], session_id: str) -> StdioServer:
    server = StdioServer(root, "--session-id", session_id, *FAST)
    servers.append(server)
    info = server.initialize()
    assert info["serverInfo"]["name"] == "heartbeat"
    return server


def record(root: Path, session_id: str) -> dict:
    return json.loads((root / ".ahrena/workflow/sessions" / f"{session_id}.json").read_text())


def ledger(root: Path, plan_id: str) -> dict:
    return json.loads((root / ".ahrena/workflow/sessions/claims" / f"{plan_id}.json").read_text())


def test_refused_then_takeover_after_kill_9_then_clean_exit(root, servers):
    one = start(root, servers, "one")
    claimed = one.call("claim_plan", plan_id="043")["structuredContent"]
    assert (claimed["outcome"], claimed["fencing_token"]) == ("claimed", 1)

    two = start(root, servers, "two")
    refused = two.call("claim_plan", plan_id="043")["structuredContent"]
    assert refused["outcome"] == "held_by_other"
    assert refused["claimed"] is False
    assert (refused["holder"]["session_id"], refused["holder"]["pid"]) == ("one", one.pid)
    assert refused["holder"]["status"] == "active"

    one.proc.kill()  # kill -9: no cleanup at all
    one.proc.wait()
    assert record(root, "one")["ended_at"] is None

    taken = two.call("claim_plan", plan_id="043")["structuredContent"]
    assert taken["outcome"] == "taken_over"
    assert (taken["previous_session"], taken["takeover_reason"]) == ("one", "proof_of_death")
    assert taken["fencing_token"] == 2

    listed = two.call("list_sessions")["structuredContent"]["sessions"]
    status = {view["session_id"]: view["status"] for view in listed}
    assert status == {"one": "dead", "two": "active"}

    two.close_stdin()
    assert two.wait() == 0
    ended = record(root, "two")
    assert (ended["end_reason"], ended["plan_id"]) == ("disconnect", None)
    assert ended["ended_at"] is not None
    assert ledger(root, "043")["holder"] is None
    assert ledger(root, "043")["fencing_token"] == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_releases_marks_ended_and_exits_0(root, servers, signum):
    one = start(root, servers, "one")
    assert one.call("claim_plan", plan_id="043")["structuredContent"]["outcome"] == "claimed"
    one.proc.send_signal(signum)
    assert one.wait(timeout=5) == 0
    ended = record(root, "one")
    assert ended["end_reason"] == signal.Signals(signum).name.lower()
    assert ended["plan_id"] is None
    assert ledger(root, "043")["holder"] is None
    assert "ended" in one.stderr()


def test_background_heartbeat_keeps_the_record_fresh(root, servers):
    one = start(root, servers, "one")
    first = record(root, "one")["last_heartbeat"]
    wait_until(lambda: record(root, "one")["last_heartbeat"] != first, what="a background beat")
    assert record(root, "one")["pid"] == one.pid


def test_orphaned_server_ends_when_its_client_dies(root, tmp_path):
    """The client dies without closing the server's stdin (we keep the pipe's
    write end open here): the parent watch must end the session."""
    read_end, write_end = os.pipe()
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen(sys.argv[1:], stdin=0, stdout=subprocess.DEVNULL)\n"
            "time.sleep(600)\n",
            CONSOLE_SCRIPT,
            "--session-id",
            "orphan",
            *FAST,
        ],
        cwd=root,
        env=clean_env(root),
        stdin=read_end,
    )
    try:
        path = root / ".ahrena/workflow/sessions/orphan.json"
        wait_until(path.exists, what="the orphan's record")
        server_pid = record(root, "orphan")["pid"]
        assert record(root, "orphan")["client_pid"] == client.pid
        client.kill()
        client.wait()
        wait_until(
            lambda: record(root, "orphan")["ended_at"] is not None,
            timeout=10,
            what="the orphan to end",
        )
        assert record(root, "orphan")["end_reason"] == "client_exit"
        wait_until(lambda: not psutil.pid_exists(server_pid), what="the orphan to exit")
    finally:
        os.close(write_end)
        os.close(read_end)
        if client.poll() is None:
            client.kill()


def test_bad_flag_fails_before_the_transport_with_one_line(root):
    done = run_console(root, "--stale-after", "-1")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "stale-after '-1' (flag --stale-after) is not accepted" in done.stderr
    assert not (root / ".ahrena").exists()


def test_python_dash_m_is_the_same_entry_point(root):
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("mcp-server-heartbeat ")
