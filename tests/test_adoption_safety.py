"""Adoption and supersession never let two live agents work under one claim:

* a server that adopts a dead server's record reports a claim lost meanwhile;
* a dead server whose MCP client still runs (its agent may still believe it
  holds the plan) hands the claim on under a new fencing token, so the old
  token is refused wherever tokens are checked;
* a process whose record another process adopted (after a wrong proof of its
  death) never writes that record again: heartbeat, claim and release refuse.
"""

from __future__ import annotations

import pytest

from mcp_server_heartbeat.domain.errors import StoreError
from mcp_server_heartbeat.store.directory.store import DirectoryStore


def test_a_resumed_session_learns_it_lost_its_claim(make_service, probe):
    a = make_service("a", pid=101)
    a.claim("043")
    probe.dead.add(101)
    b = make_service("b", pid=102)
    assert b.claim("043").takeover_reason == "proof_of_death"
    resumed = make_service("a", pid=201)  # the conversation resumes under its id
    assert resumed.view_self().plan_id is None
    lost = resumed.heartbeat().claim_lost
    assert lost is not None and (lost.plan_id, lost.taken_by) == ("043", "b")
    assert resumed.heartbeat().claim_lost is None


def test_a_claim_adopted_from_a_live_client_gets_a_new_token(make_service, probe, heartbeat_dir):
    a = make_service("a", pid=101, client_pid=11)
    assert a.claim("043").fencing_token == 1
    probe.dead.add(101)  # its server died; its client (pid 11) still runs
    other_terminal = make_service("a", pid=201, client_pid=22)
    view = other_terminal.view_self()
    assert (view.plan_id, view.fencing_token) == ("043", 2)
    ledger = DirectoryStore(heartbeat_dir).read_claim("043")
    assert (ledger.holder, ledger.fencing_token, ledger.holder_pid) == ("a", 2, 201)
    events = [e.event for e in DirectoryStore(heartbeat_dir).read_events()]
    assert events[-2:] == ["claim_taken_over", "session_adopted"]


def test_a_reconnect_of_the_same_client_keeps_its_token(make_service, probe):
    a = make_service("a", pid=101, client_pid=11)
    a.claim("043")
    probe.dead.add(101)
    reconnected = make_service("a", pid=201, client_pid=11)  # /mcp reconnect
    assert reconnected.view_self().fencing_token == 1


def test_a_superseded_process_never_writes_its_adopters_record(make_service, probe, heartbeat_dir):
    a = make_service("a", pid=101)
    a.claim("043")
    probe.dead.add(101)  # a wrong proof of death: 101 still runs
    adopter = make_service("a", pid=201)
    probe.dead.discard(101)
    store = DirectoryStore(heartbeat_dir)
    before = store.read_session("a")
    with pytest.raises(StoreError, match="now belongs to another process"):
        a.heartbeat()
    a.beat()  # the background beat writes nothing either
    with pytest.raises(StoreError, match="now belongs to another process"):
        a.release("043")
    with pytest.raises(StoreError, match="now belongs to another process"):
        a.claim("044")
    assert store.read_session("a") == before
    assert store.read_claim("043").holder_pid == 201
    assert store.read_claim("044") is None
    assert adopter.heartbeat().session.pid == 201
