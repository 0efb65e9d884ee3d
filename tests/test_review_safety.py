"""Failures after a commit point and reads during a transaction never mislead:

* a record rewrite that failed after an adoption never makes the live adopter
  look dead (the ledger names the holder's process), nor makes it think it was
  superseded;
* a ledger that names a session whose record shows no plan is found again when
  the session resumes;
* the session's own view never shows a claim whose transaction is still in flight;
* a plan never changes holder under the same fencing token, and a transaction
  writes at most one ledger (its commit point is one write).
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from conftest import HOST, make_identity
from mcp_server_heartbeat.domain.errors import HeartbeatError, StoreError
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import ClaimRecord
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory import atomic
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from mcp_server_heartbeat.store.memory import MemoryStore


@pytest.fixture
def fail_record_writes():
    """Make every session-record write fail (disk full); claim ledgers still work."""

    def hook(target: Path) -> None:
        if target.parent.name != "claims" and target.name.endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")

    atomic.FAILPOINTS["open"] = hook
    yield
    atomic.FAILPOINTS.pop("open", None)


def test_a_failed_rewrite_after_adoption_never_makes_the_adopter_look_dead(
    make_service, probe, clock, heartbeat_dir, request
):
    a = make_service("a", pid=101, client_pid=11)
    a.claim("043")
    probe.dead.update({101, 11})
    clock.advance(5)
    request.getfixturevalue("fail_record_writes")
    adopter = make_service("a", pid=201, client_pid=11)  # its record rewrite fails
    atomic.FAILPOINTS.pop("open", None)
    store = DirectoryStore(heartbeat_dir)
    assert store.read_session("a").pid == 101  # the disk still names the dead process
    assert store.read_claim("043").holder_pid == 201
    c = make_service("c", pid=301)
    assert c.claim("043").outcome == "held_by_other"  # judged by the ledger's process
    adopter.beat()  # not "superseded" by the record it replaced: it repairs it
    assert store.read_session("a").pid == 201
    assert adopter.heartbeat().session.plan_id == "043"


def test_a_ledger_naming_a_session_is_found_when_it_resumes(
    make_service, probe, heartbeat_dir, request
):
    a = make_service("a", pid=101, client_pid=11)
    request.getfixturevalue("fail_record_writes")
    assert a.claim("043").outcome == "claimed"  # the ledger commits; the record does not
    atomic.FAILPOINTS.pop("open", None)
    store = DirectoryStore(heartbeat_dir)
    assert store.read_session("a").plan_id is None
    probe.dead.update({101, 11})
    resumed = make_service("a", pid=201, client_pid=11)
    view = resumed.view_self()
    assert (view.plan_id, view.fencing_token) == ("043", 1)
    assert resumed.release("043").outcome == "released"
    assert store.read_claim("043").holder is None


def test_the_own_view_never_shows_a_claim_in_flight(clock, probe):
    store = MemoryStore(clock=clock)
    service = SessionService(
        store, make_identity("a", 101, HOST), Thresholds(), interval=30.0, clock=clock, probe=probe
    )
    service.start()
    in_commit = threading.Event()
    release_commit = threading.Event()
    real_transaction = store.transaction

    def slow_transaction(timeout=None):
        context = real_transaction(timeout)

        class Slow:
            def __enter__(self):
                return context.__enter__()

            def __exit__(self, *exc):
                in_commit.set()
                release_commit.wait(10)
                return context.__exit__(*exc)

        return Slow()

    store.transaction = slow_transaction  # type: ignore[method-assign]
    worker = threading.Thread(target=service.claim, args=("043",))
    worker.start()
    assert in_commit.wait(10)
    seen: list[str | None] = []
    reader = threading.Thread(target=lambda: seen.append(service.view_self().plan_id))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive()  # waits for the transaction instead of reading its writes
    release_commit.set()
    worker.join(10)
    reader.join(10)
    assert seen == ["043"]


def test_a_new_holder_needs_a_larger_token_and_one_ledger_per_transaction(clock):
    store = MemoryStore(clock=clock)
    with store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=3, holder="a"))
    with pytest.raises(StoreError, match="needs a token above 3"), store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=3, holder="b"))
    with (
        pytest.raises(HeartbeatError, match="one claim ledger per transaction"),
        store.transaction() as tx,
    ):
        tx.write_claim(ClaimRecord(plan_id="044", fencing_token=1, holder="a"))
        tx.write_claim(ClaimRecord(plan_id="045", fencing_token=1, holder="a"))
    assert store.read_claim("043").holder == "a"
    assert store.read_claim("044") is None
