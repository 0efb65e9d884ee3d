"""One live process per session id.

``claude --continue`` in two terminals starts two servers with one
``CLAUDE_CODE_SESSION_ID``. A server started under the id of a record whose
process may still run (alive, or remote/unprovable) runs under a new id
``<id>-2`` that continues it; it adopts only a record that ended, is proven
dead, names no process, or was written by the SessionStart hook for its own
client. So two live processes never share a record or a claim, and one
process never ends another live process's record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import FakeProbe, ServiceFactory
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer, clean_env

# -- in process (injected probe) -------------------------------------------------------


def test_a_second_process_under_a_live_id_runs_under_a_new_id(
    make_service: ServiceFactory, heartbeat_dir: Path
) -> None:
    first = make_service("conv", pid=101, client_pid=11)
    first.claim("043")
    second = make_service("conv", pid=201, client_pid=21)
    assert (second.session_id, second.continues, first.continues) == ("conv-2", "conv", None)
    assert second.record.previous_session == "conv"
    assert "conv was in use" in second.identity.session_id_source

    refused = second.claim("043")
    assert refused.outcome == "held_by_other"
    assert refused.holder is not None and refused.holder.session_id == "conv"
    assert refused.holder.relationship == "same_conversation"
    assert second.claim("044").outcome == "claimed"
    assert first.claim("043").outcome == "already_yours"

    first.end("disconnect")  # the first one's exit ends only its own record
    store = DirectoryStore(heartbeat_dir)
    mine = store.read_session("conv-2")
    ledger = store.read_claim("044")
    assert mine is not None and mine.ended_at is None and mine.plan_id == "044"
    assert ledger is not None and ledger.holder == "conv-2"
    assert second.heartbeat().claim_lost is None


def test_a_dead_or_ended_record_is_adopted_with_its_claim(
    make_service: ServiceFactory, heartbeat_dir: Path, probe: FakeProbe
) -> None:
    first = make_service("conv", pid=101, client_pid=11)
    token = first.claim("043").fencing_token
    probe.dead.update({101, 11})  # kill -9 of the client and its server, then a resume
    resumed = make_service("conv", pid=201, client_pid=21)
    assert (resumed.session_id, resumed.continues) == ("conv", None)
    assert resumed.claim("043").outcome == "already_yours"
    assert resumed.record.fencing_token == token
    resumed.end("disconnect")
    again = make_service("conv", pid=301, client_pid=31)
    assert (again.session_id, again.continues) == ("conv", None)


@pytest.mark.parametrize(
    "where",
    [{"pid_namespace": "pid:[4026599999]"}, {"host": "elsewhere"}, {"boot_id": None}],
    ids=["other PID namespace", "other host", "earlier version"],
)
def test_a_record_whose_process_cannot_be_named_is_not_adopted_even_when_stale(
    make_service: ServiceFactory,
    heartbeat_dir: Path,
    probe: FakeProbe,
    clock: Any,
    where: dict[str, Any],
) -> None:
    make_service("conv", pid=101, client_pid=11)
    store = DirectoryStore(heartbeat_dir)
    record = store.read_session("conv")
    assert record is not None
    store.write_session(record.model_copy(update=where))
    probe.dead.add(101)  # here, pid 101 is gone; it proves nothing about that process
    clock.advance(10_000)
    second = make_service("conv", pid=201, client_pid=21)
    assert (second.session_id, second.continues) == ("conv-2", "conv")


def test_the_start_hooks_record_for_this_client_is_adopted(
    make_service: ServiceFactory, heartbeat_dir: Path
) -> None:
    """The SessionStart hook writes the record with pid = client_pid = the Claude Code
    process; the server that client starts (its parent is that process) adopts it."""
    hook = make_service("conv", pid=11, client_pid=11)
    server = make_service("conv", pid=201, client_pid=11)
    assert (server.session_id, server.continues) == ("conv", None)
    other_client = make_service("conv", pid=301, client_pid=31)
    assert other_client.session_id == "conv-2"
    assert hook.session_id == "conv"


def test_new_ids_are_unique_valid_and_reuse_only_adoptable_records(
    make_service: ServiceFactory, probe: FakeProbe
) -> None:
    make_service("conv", pid=101, client_pid=11)
    second = make_service("conv", pid=201, client_pid=21)
    third = make_service("conv", pid=301, client_pid=31)
    assert (second.session_id, third.session_id) == ("conv-2", "conv-3")
    second.end("disconnect")
    fourth = make_service("conv", pid=401, client_pid=41)
    assert (fourth.session_id, fourth.continues) == ("conv-2", "conv")
    long_id = "x" * 128
    make_service(long_id, pid=501, client_pid=51)
    longer = make_service(long_id, pid=601, client_pid=61)
    assert longer.session_id == "x" * 126 + "-2"


# -- real processes over stdio ------------------------------------------------------------

FAST = ("--interval", "0.5", "--stale-after", "5")
SID = "5a8c1e2f-0b7d-4e0a-9c55-1d2e3f4a5b6c"


@pytest.fixture
def servers():
    started: list[StdioServer] = []
    yield started
    for server in started:
        server.stop()


def _start(root: Path, servers: list[StdioServer]) -> StdioServer:
    server = StdioServer(root, *FAST, env=clean_env(root, CLAUDE_CODE_SESSION_ID=SID))
    servers.append(server)
    server.initialize()
    return server


def _record(root: Path, session_id: str) -> dict[str, Any]:
    return json.loads((root / ".ahrena/workflow/sessions" / f"{session_id}.json").read_text())


def _ledger(root: Path, plan_id: str) -> dict[str, Any]:
    path = root / ".ahrena/workflow/sessions/claims" / f"{plan_id}.json"
    return json.loads(path.read_text())


def test_two_live_servers_with_one_session_id_never_share_a_plan_or_a_record(
    tmp_path: Path, servers: list[StdioServer]
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    one = _start(root, servers)
    assert one.call("claim_plan", plan_id="043")["structuredContent"]["outcome"] == "claimed"

    two = _start(root, servers)
    info = two.call("session_info")["structuredContent"]
    assert info["session"]["session_id"] == f"{SID}-2"
    assert (info["continues"], info["session"]["previous_session"]) == (SID, SID)
    assert any(SID in warning and f"{SID}-2" in warning for warning in info["warnings"])
    assert f"runs as session {SID}-2" in two.stderr()
    refused = two.call("claim_plan", plan_id="043")["structuredContent"]
    assert refused["outcome"] == "held_by_other"
    assert (refused["holder"]["session_id"], refused["holder"]["pid"]) == (SID, one.pid)
    assert two.call("claim_plan", plan_id="044")["structuredContent"]["outcome"] == "claimed"
    assert one.call("session_info")["structuredContent"]["session"]["session_id"] == SID

    one.close_stdin()  # the first one exits: it ends its own record, not the second's
    assert one.wait() == 0
    assert _record(root, SID)["end_reason"] == "disconnect"
    assert _record(root, f"{SID}-2")["ended_at"] is None
    assert _ledger(root, "044")["holder"] == f"{SID}-2"
    beat = two.call("heartbeat")["structuredContent"]
    assert (beat["claim_lost"], beat["session"]["plan_id"]) == (None, "044")

    three = _start(root, servers)  # the original id ended: adopted (resume)
    info = three.call("session_info")["structuredContent"]
    assert (info["session"]["session_id"], info["continues"]) == (SID, None)
    claimed = three.call("claim_plan", plan_id="043")["structuredContent"]
    assert claimed["outcome"] == "claimed"

    three.proc.kill()  # kill -9: no cleanup
    three.proc.wait()
    four = _start(root, servers)  # proven dead: adopted, with its claim
    info = four.call("session_info")["structuredContent"]
    assert (info["session"]["session_id"], info["continues"]) == (SID, None)
    again = four.call("claim_plan", plan_id="043")["structuredContent"]
    assert (again["outcome"], again["fencing_token"]) == ("already_yours", claimed["fencing_token"])
    assert _record(root, SID)["pid"] == four.pid
    assert _ledger(root, "044")["holder"] == f"{SID}-2"
