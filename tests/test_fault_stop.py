"""Fault round two, item 2: a stopped terminal must not freeze the project.

Ctrl-Z sends SIGTSTP to the client's whole process group, server included. A
server stopped while its background heartbeat held the directory lock made
every other session's claim, release and heartbeat fail with "stayed locked"
until the user resumed it. Servers now ignore SIGTSTP, SIGTTIN and SIGTTOU;
for SIGSTOP, which nobody can refuse, the "stayed locked" error and ``status``
name the stopped holder and how to resume it.

Real processes throughout: the console script over stdio, and a child holding
the lock for the SIGSTOP case.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import ServiceFactory
from mcp_server_heartbeat.domain import lease as lease_module
from mcp_server_heartbeat.domain.errors import StoreBusyError
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.identity import detect_identity
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer, run_console, wait_until

STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def _other_session(directory: Path, root: Path, lock_timeout: float) -> SessionService:
    store = DirectoryStore(directory, lock_timeout=lock_timeout)
    store.prepare()
    service = SessionService(
        store,
        detect_identity("other-session", {}, root),
        Thresholds(stale_after=300.0, idle_after=600.0),
        interval=30.0,
    )
    service.start()
    return service


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU])
def test_a_server_keeps_serving_through_job_control_signals(
    tmp_path: Path, signum: signal.Signals
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    directory = tmp_path / "hb"
    # A beat every 20 ms: the server takes the directory lock ~50 times a second.
    server = StdioServer(
        root, "--dir", str(directory), "--session-id", "ctrl-z", "--interval", "0.02"
    )
    try:
        server.initialize()
        os.kill(server.pid, signum)
        # A stopped server would never answer (the receive times out).
        beat = server.call("heartbeat", activity="after-signal")
        assert beat.get("isError") is not True, beat
        assert psutil.Process(server.pid).status() not in STOPPED
        # Another session's claims of a free plan go through while the server beats.
        other = _other_session(directory, root, lock_timeout=2.0)
        for _ in range(20):
            assert other.claim("free-plan").outcome == "claimed"
            assert other.release("free-plan").outcome == "released"
        os.kill(server.pid, signum)
        assert server.call("list_sessions").get("isError") is not True
        assert psutil.Process(server.pid).status() not in STOPPED
        other.end("done")
        server.close_stdin()
        assert server.wait() == 0
    finally:
        if server.proc.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


HOLDER = """\
import sys
from collections.abc import Iterator
from pathlib import Path
from mcp_server_heartbeat.host.identity import detect_identity
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore

store = DirectoryStore(Path(sys.argv[1]))
service = SessionService(
    store, detect_identity("frozen-session", {}, Path.cwd()), Thresholds(), interval=30.0
)
service.start()
with store.lock():
    print("locked", flush=True)
    sys.stdin.read()
service.end("done")
"""


@pytest.mark.slow
def test_a_stopped_lock_holder_is_named_with_the_way_to_resume_it(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    directory = tmp_path / "hb"
    other = _other_session(directory, root, lock_timeout=0.3)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        os.kill(holder.pid, signal.SIGSTOP)
        wait_until(
            lambda: psutil.Process(holder.pid).status() in STOPPED, what="the holder to stop"
        )

        with pytest.raises(StoreBusyError) as caught:
            other.claim("free-plan")
        message = str(caught.value)
        assert f"stayed locked for 0.3 s by PID {holder.pid} " in message
        assert "session frozen-session" in message
        assert "command: python" in message
        assert f"stopped: resume it with `kill -CONT {holder.pid}` or `fg`" in message
        assert "nothing was changed" in message

        status = run_console(root, "status", "--dir", str(directory))
        assert status.returncode == 0, status.stderr
        assert (
            f"directory lock: held by PID {holder.pid} (session frozen-session, command: python"
            in status.stdout
        )
        assert f"kill -CONT {holder.pid}" in status.stdout
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(10) == 0
    assert other.claim("free-plan").outcome == "claimed"
    other.end("done")


@pytest.mark.slow
def test_status_names_no_holder_when_the_lock_is_free(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    directory = tmp_path / "hb"
    other = _other_session(directory, root, lock_timeout=1.0)
    status = run_console(root, "status", "--dir", str(directory))
    assert status.returncode == 0, status.stderr
    assert "directory lock" not in status.stdout
    as_json = run_console(root, "status", "--json", "--dir", str(directory))
    assert '"lock_holder": null' in as_json.stdout
    other.end("done")


def test_claim_and_release_messages_are_built_outside_the_lock(
    make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the decision and its writes happen under the directory lock."""
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    assert a.claim("p").outcome == "claimed"
    held = {"now": False}
    seen: list[tuple[str, bool]] = []
    real_lock = b.store.lock

    @contextlib.contextmanager
    def watched_lock(timeout: float | None = None) -> Iterator[None]:
        with real_lock(timeout):
            held["now"] = True
            try:
                yield
            finally:
                held["now"] = False

    monkeypatch.setattr(b.store, "lock", watched_lock)
    real_refusal = lease_module.refusal
    real_release_result = lease_module.ReleaseResult

    def refusal(*args: object) -> str:
        seen.append(("refusal", held["now"]))
        return real_refusal(*args)  # type: ignore[arg-type]

    def release_result(**fields: object) -> object:
        seen.append(("release", held["now"]))
        return real_release_result(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(lease_module, "refusal", refusal)
    monkeypatch.setattr(lease_module, "ReleaseResult", release_result)
    assert b.claim("p").outcome == "held_by_other"
    assert b.release("p").outcome == "not_held"
    assert seen == [("refusal", False), ("release", False)]
