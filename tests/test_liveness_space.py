"""Proof of death that containers and hidden processes cannot fool.

A PID names one process only inside one PID namespace of one boot of one
host, so a holder is dead only when all of these match the reader's and the
probe proves its process gone; anything else is remote (never dead). A
process the reader may not see (``hidepid=2``, EPERM) is alive.

Real-process tests run as root (``unshare``); they skip elsewhere with the
reason, never under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST, FakeProbe, ServiceFactory
from mcp_server_heartbeat.domain.models import SessionRecord
from mcp_server_heartbeat.host.identity import read_boot_id, read_pid_namespace
from mcp_server_heartbeat.host.probe import (
    ProcessState,
    pid_exists,
    probe_process,
    process_start_time,
)
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from namespaces import in_new_pid_namespace, require_root_and_unshare
from stdio_client import StdioServer

# -- the probe: "no such process" is the kernel's answer, not /proc's ------------------

HIDDEN_PROBE = """
import json, os, sys
from mcp_server_heartbeat.host.probe import probe_process, process_start_time
from datetime import datetime
pid, started, gone = int(sys.argv[1]), datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
os.setgroups([]); os.setgid(65534); os.setuid(65534)
print(json.dumps({
    "uid": os.getuid(),
    "visible": os.path.exists(f"/proc/{pid}"),
    "hidden": probe_process(pid, started).value,
    "gone": probe_process(gone, None).value,
}))
"""


def test_a_process_that_proc_hides_from_the_reader_is_alive(tmp_path: Path) -> None:
    """``/proc`` mounted ``hidepid=2``: user nobody sees no ``/proc/<pid>`` for root's
    process, so psutil says NoSuchProcess; ``kill(pid, 0)`` says EPERM: alive.
    A reaped child is still GONE (ESRCH)."""
    require_root_and_unshare("the hidepid=2 probe test")
    target = subprocess.Popen(["sleep", "60"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    started = process_start_time(target.pid)
    assert started is not None
    try:
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                'mount -t proc -o hidepid=2 proc /proc && exec "$@"',
                "sh",
                sys.executable,
                "-c",
                HIDDEN_PROBE,
                str(target.pid),
                started.isoformat(),
                str(gone.pid),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
        )
    finally:
        target.kill()
        target.wait()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["uid"] == 65534
    assert seen["visible"] is False, "hidepid=2 did not hide root's process: test proves nothing"
    assert seen["hidden"] == "alive"
    assert seen["gone"] == "gone"


def test_pid_exists_is_the_kernels_answer() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert pid_exists(os.getpid()) is True
    assert pid_exists(1) is True  # init: EPERM for others, success for root: exists
    assert pid_exists(child.pid) is False
    assert probe_process(child.pid, None) is ProcessState.GONE


# -- the rule, in process: other namespace, other boot, earlier versions ----------------


def _foreign(store: DirectoryStore, session_id: str, **fields: Any) -> None:
    """Make ``session_id``'s record (and its claim ledger) look written elsewhere."""
    record = store.read_session(session_id)
    assert record is not None
    store.write_session(record.model_copy(update=fields))
    if record.plan_id is not None:
        ledger = store.read_claim(record.plan_id)
        assert ledger is not None
        store.write_claim(
            ledger.model_copy(
                update={
                    "holder_boot_id": fields.get("boot_id", ledger.holder_boot_id),
                    "holder_pid_namespace": fields.get(
                        "pid_namespace", ledger.holder_pid_namespace
                    ),
                }
            )
        )


@pytest.mark.parametrize(
    "where",
    [
        {"pid_namespace": "pid:[4026599999]"},  # a container / unshare --pid, same hostname
        {"boot_id": "00000000-0000-0000-0000-000000000000"},  # same hostname, other boot
        {"boot_id": None, "pid_namespace": None},  # a record of an earlier version
    ],
    ids=["other PID namespace", "other boot", "earlier version"],
)
def test_a_holder_the_reader_cannot_name_is_remote_and_yields_only_to_force_when_stale(
    make_service: ServiceFactory,
    heartbeat_dir: Path,
    probe: FakeProbe,
    clock: Any,
    where: dict[str, Any],
) -> None:
    store = DirectoryStore(heartbeat_dir)
    holder = make_service("holder", pid=300, client_pid=30)
    holder.claim("043")
    _foreign(store, "holder", **where)
    probe.dead.add(300)  # here, pid 300 is gone: proof of death only if it named the holder
    claimant = make_service("claimant", pid=301)
    refused = claimant.claim("043")
    assert refused.outcome == "held_by_other"
    assert refused.holder is not None
    assert (refused.holder.status, refused.holder.process_alive) == ("active", None)
    clock.advance(301)  # stale by time: still not dead, so only force takes it
    refused = claimant.claim("043")
    assert refused.outcome == "held_by_other"
    assert refused.holder is not None
    assert (refused.holder.status, refused.holder.relationship) == ("stale", "stale_remote")
    taken = claimant.claim("043", force=True)
    assert (taken.outcome, taken.takeover_reason) == ("taken_over", "forced_stale")


def test_a_holder_whose_record_is_gone_is_judged_by_the_ledgers_namespace(
    make_service: ServiceFactory, heartbeat_dir: Path, probe: FakeProbe
) -> None:
    store = DirectoryStore(heartbeat_dir)
    holder = make_service("holder", pid=300)
    holder.claim("043")
    ledger = store.read_claim("043")
    assert ledger is not None
    assert (ledger.holder_boot_id, ledger.holder_pid_namespace) == (
        read_boot_id(),
        read_pid_namespace(),
    )
    store.write_claim(ledger.model_copy(update={"holder_pid_namespace": "pid:[4026599999]"}))
    (heartbeat_dir / "holder.json").unlink()
    probe.dead.add(300)
    claimant = make_service("claimant", pid=301)
    assert claimant.claim("043").outcome == "held_by_other"
    store.write_claim(ledger)  # the ledger names this namespace again: now provable
    taken = claimant.claim("043")
    assert (taken.outcome, taken.takeover_reason) == ("taken_over", "proof_of_death")


def test_records_and_ledgers_carry_boot_and_namespace(
    make_service: ServiceFactory, heartbeat_dir: Path
) -> None:
    make_service("a", pid=101).claim("043")
    store = DirectoryStore(heartbeat_dir)
    record = store.read_session("a")
    assert record is not None and record.boot_id == read_boot_id() is not None
    assert record.pid_namespace == read_pid_namespace() is not None
    assert record.pid_namespace.startswith("pid:[")
    released = make_service("b", pid=102)
    released.claim("044")
    released.release()
    ledger = store.read_claim("044")
    assert ledger is not None and ledger.holder is None
    assert (ledger.holder_boot_id, ledger.holder_pid_namespace) == (None, None)


# -- real processes in another PID namespace, same hostname ------------------------------


def _record(root: Path, session_id: str) -> SessionRecord:
    path = root / ".ahrena/workflow/sessions" / f"{session_id}.json"
    return SessionRecord.model_validate_json(path.read_text())


@pytest.fixture
def servers():
    started: list[StdioServer] = []
    yield started
    for server in started:
        server.stop()


def test_a_holder_in_another_pid_namespace_is_never_taken_over_without_force(
    tmp_path: Path, servers: list[StdioServer]
) -> None:
    """The real server inside ``unshare --pid --fork --mount-proc`` (same hostname)
    holds 043; outside, its pid names another process or none (the earlier rule
    took it over with proof_of_death). Outside it is remote: held_by_other, even
    with force while fresh. Inside, the outside holder of 044 is remote too."""
    require_root_and_unshare("the PID namespace test")
    root = tmp_path / "project"
    root.mkdir()
    inside = StdioServer(root, "--session-id", "inside", prefix=in_new_pid_namespace())
    servers.append(inside)
    inside.initialize()
    claimed = inside.call("claim_plan", plan_id="043")["structuredContent"]
    assert (claimed["outcome"], claimed["fencing_token"]) == ("claimed", 1)

    held = _record(root, "inside")
    assert held.host == socket.gethostname() == HOST
    assert held.pid_namespace is not None and held.pid_namespace != read_pid_namespace()
    assert held.boot_id == read_boot_id()
    assert held.pid is not None
    # Outside, the recorded pid names another process or none: the old rule's "proof".
    assert probe_process(held.pid, held.pid_started_at).dead

    outside = StdioServer(root, "--session-id", "outside")
    servers.append(outside)
    outside.initialize()
    for force in (False, True):
        refused = outside.call("claim_plan", plan_id="043", force=force)["structuredContent"]
        assert refused["outcome"] == "held_by_other", refused
        assert refused["holder"]["session_id"] == "inside"
        assert refused["holder"]["process_alive"] is None
        assert refused["holder"]["status"] == "active"

    mine = outside.call("claim_plan", plan_id="044")["structuredContent"]
    assert mine["outcome"] == "claimed"
    refused = inside.call("claim_plan", plan_id="044")["structuredContent"]
    # inside holds 043: release it first so the refusal is about 044's holder
    assert refused["outcome"] == "holding_other"
    inside.call("release", plan_id="043")
    refused = inside.call("claim_plan", plan_id="044")["structuredContent"]
    assert refused["outcome"] == "held_by_other", refused
    assert refused["holder"]["session_id"] == "outside"
    assert refused["holder"]["process_alive"] is None
    listed = inside.call("list_sessions")["structuredContent"]["sessions"]
    alive = {view["session_id"]: view["process_alive"] for view in listed}
    assert alive == {"inside": True, "outside": None}
