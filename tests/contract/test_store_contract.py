"""The store contract: every invariant of the design and every claim and release
outcome, run against every store behind the seam.

A store joins by adding one entry to ``STORES`` below (a factory taking the
test's temp dir and fake clock): the whole suite then runs against it. Each
test drives real sessions (:class:`SessionService`) over one shared store, with
an injected clock and process probe, and checks what the store holds through
its read API only, never through a backend's files.

Cross-process exclusion is a property of the stores that cross processes; the
directory store's is proven by the race, kill -9 and vandal suites
(tests/test_race.py, tests/test_fault_kill9.py, tests/test_fault_lock.py);
here, transactions are raced from threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST, FakeClock, FakeProbe, make_identity
from mcp_server_heartbeat.domain.consent import ForceQuestion
from mcp_server_heartbeat.domain.errors import HeartbeatError, StoreBusyError
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import ClaimRecord, ClaimResult, Event, SessionRecord
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store import Store
from mcp_server_heartbeat.store.directory import DirectoryStore
from mcp_server_heartbeat.store.memory import MemoryStore
from pg_support import make_store


def _directory(tmp_path: Path, clock: FakeClock) -> Store:
    store = DirectoryStore(tmp_path / "sessions", clock=clock)
    store.prepare()
    return store


def _memory(tmp_path: Path, clock: FakeClock) -> Store:
    return MemoryStore(clock=clock)


_CLEANUPS: list[Callable[[], None]] = []
"""What the stores made for the current test leave to undo (a throwaway schema)."""


def _postgres(tmp_path: Path, clock: FakeClock) -> Store:
    # HEARTBEAT_TEST_DSN's server, a random schema dropped after the test;
    # skips without it (fails when CI=true), see tests/pg_support.py.
    return make_store(_CLEANUPS, clock=clock)


STORES: dict[str, Callable[[Path, FakeClock], Store]] = {
    "memory": _memory,
    "directory": _directory,
    "postgres": _postgres,
}
"""Every store the contract runs against: name -> factory(tmp_path, clock)."""


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    try:
        yield STORES[request.param](tmp_path, clock)
    finally:
        while _CLEANUPS:
            _CLEANUPS.pop()()


@dataclass
class World:
    """Sessions over one store, one clock and one probe."""

    store: Store
    clock: FakeClock
    probe: FakeProbe

    def session(self, session_id: str, pid: int, host: str = HOST) -> SessionService:
        service = SessionService(
            self.store,
            make_identity(session_id, pid, host),
            Thresholds(stale_after=300.0, idle_after=600.0),
            interval=30.0,
            clock=self.clock,
            probe=self.probe,
        )
        service.start()
        return service

    def state(self) -> tuple[Any, ...]:
        """Everything a reader can see, for "nothing changed" checks."""
        records, unreadable = self.store.list_sessions()
        return (
            [r.model_dump() for r in records],
            [u.model_dump() for u in unreadable],
            [c.model_dump() for c in self.store.iter_claims()],
            [e.model_dump() for e in self.store.read_events()],
        )

    def events(self, plan_id: str | None = None) -> list[tuple[str, str, int | None]]:
        return [
            (e.event, e.session_id, e.fencing_token)
            for e in self.store.read_events()
            if plan_id is None or e.plan_id == plan_id
        ]


@pytest.fixture
def world(store: Store, clock: FakeClock, probe: FakeProbe) -> World:
    return World(store, clock, probe)


# -- claim outcomes (design: claim_plan) -------------------------------------------------


def test_a_free_plan_is_claimed_with_token_1_and_the_ledger_is_the_truth(world):
    a = world.session("a", 101)
    result = a.claim("043")
    assert (result.outcome, result.claimed, result.fencing_token) == ("claimed", True, 1)
    ledger = world.store.read_claim("043")
    assert (ledger.holder, ledger.fencing_token, ledger.acquired_by) == ("a", 1, "claim")
    record = world.store.read_session("a")
    assert (record.plan_id, record.fencing_token) == ("043", 1)


def test_claiming_again_is_idempotent_with_the_same_token(world):
    a = world.session("a", 101)
    first = a.claim("043")
    before = world.state()
    again = a.claim("043")
    assert (again.outcome, again.claimed, again.fencing_token) == (
        "already_yours",
        True,
        first.fencing_token,
    )
    assert world.state() == before


def test_holding_another_plan_is_refused_and_changes_nothing(world):
    a = world.session("a", 101)
    a.claim("043")
    before = world.state()
    result = a.claim("044")
    assert (result.outcome, result.claimed, result.held_plan) == ("holding_other", False, "043")
    assert world.state() == before
    assert world.store.read_claim("044") is None


@pytest.mark.parametrize("force", [False, True])
def test_a_live_holder_with_a_fresh_heartbeat_is_never_displaced(world, force):
    a = world.session("a", 101)
    b = world.session("b", 102)
    a.claim("043")
    before = world.state()
    result = b.claim("043", force=force)
    assert (result.outcome, result.claimed, result.fencing_token) == ("held_by_other", False, None)
    assert result.holder.session_id == "a"
    assert world.state() == before


@pytest.mark.parametrize("how", ["gone", "reused"])
def test_a_holder_proven_dead_is_taken_over_without_force(world, how):
    a = world.session("a", 101)
    b = world.session("b", 102)
    a.claim("043")
    (world.probe.dead if how == "gone" else world.probe.reused).add(101)
    result = b.claim("043")
    assert (result.outcome, result.takeover_reason, result.previous_session) == (
        "taken_over",
        "proof_of_death",
        "a",
    )
    assert result.fencing_token == 2
    ledger = world.store.read_claim("043")
    assert (ledger.holder, ledger.previous_holder, ledger.acquired_by) == ("b", "a", "takeover")


def test_a_stale_holder_yields_only_to_force(world):
    a = world.session("a", 101)
    a.claim("043")
    world.clock.advance(301)
    b = world.session("b", 102)
    refused = b.claim("043")
    assert (refused.outcome, refused.holder.status) == ("held_by_other", "stale")
    taken = b.claim("043", force=True)
    assert (taken.outcome, taken.takeover_reason, taken.fencing_token) == (
        "taken_over",
        "forced_stale",
        2,
    )


def test_a_forced_takeover_waits_for_the_person_and_only_for_the_holder_shown(world):
    """claim_plan(force=true) with a client that can ask (issue 12, part 4): the
    first transaction writes nothing and returns the question; the takeover is
    written only for the holder and token the person saw."""
    a = world.session("a", 101)
    a.claim("043")
    world.clock.advance(301)
    b = world.session("b", 102)
    before = world.state()
    question = b.claim_or_ask("043")
    assert isinstance(question, ForceQuestion)
    assert (question.shown, question.new_token) == (("a", 1), 2)
    assert world.state() == before  # declined: nothing to undo, nothing changed
    # The holder changes while the person answers: a releases, c claims and goes stale.
    a.release("043")
    c = world.session("c", 103)
    assert c.claim("043").fencing_token == 2
    world.clock.advance(301)
    again = b.claim_or_ask("043", confirmed=question)
    assert isinstance(again, ForceQuestion) and again.shown == ("c", 2)  # asked again
    taken = b.claim_or_ask("043", confirmed=again)
    assert isinstance(taken, ClaimResult)
    assert (taken.outcome, taken.takeover_reason, taken.fencing_token) == (
        "taken_over",
        "forced_stale",
        3,
    )
    assert b.claim_or_ask("043").outcome == "already_yours"


def test_an_automatic_takeover_is_never_asked(world):
    a = world.session("a", 101)
    a.claim("043")
    world.clock.advance(301)
    world.probe.dead.add(101)
    taken = world.session("b", 102).claim_or_ask("043")
    assert isinstance(taken, ClaimResult)
    assert (taken.outcome, taken.takeover_reason) == ("taken_over", "proof_of_death")


def test_a_holder_on_another_host_is_never_proven_dead(world):
    a = world.session("a", 101, host="elsewhere")
    a.claim("043")
    world.probe.dead.add(101)  # a pid of another host means nothing here
    b = world.session("b", 102)
    assert b.claim("043").outcome == "held_by_other"
    world.clock.advance(301)
    assert b.claim("043").outcome == "held_by_other"
    assert b.claim("043", force=True).takeover_reason == "forced_stale"


def test_a_holder_that_ended_without_releasing_is_taken_over(world):
    now = world.clock()
    with world.store.transaction() as tx:
        tx.write_session(
            SessionRecord(
                session_id="gone",
                plan_id="043",
                fencing_token=4,
                host=HOST,
                pid=999,
                started_at=now,
                last_heartbeat=now,
                ended_at=now,
                end_reason="disconnect",
            )
        )
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=4, holder="gone", claimed_at=now))
    b = world.session("b", 102)
    result = b.claim("043")
    assert (result.outcome, result.takeover_reason, result.fencing_token) == (
        "taken_over",
        "holder_ended",
        5,
    )


def test_a_holder_with_no_record_needs_force_and_is_judged_by_its_ledger(world):
    now = world.clock()
    with world.store.transaction() as tx:
        tx.write_claim(
            ClaimRecord(
                plan_id="043",
                fencing_token=7,
                holder="vanished",
                holder_host="elsewhere",
                holder_pid=5,
                claimed_at=now,
            )
        )
    b = world.session("b", 102)
    assert b.claim("043").outcome == "held_by_other"
    taken = b.claim("043", force=True)
    assert (taken.outcome, taken.takeover_reason, taken.fencing_token) == (
        "taken_over",
        "holder_missing",
        8,
    )


# -- fencing tokens (invariant 2) --------------------------------------------------------


def test_tokens_strictly_increase_across_release_takeover_and_reopening(world):
    a = world.session("a", 101)
    b = world.session("b", 102)
    tokens = [a.claim("043").fencing_token]
    a.release("043")
    tokens.append(b.claim("043").fencing_token)
    world.probe.dead.add(102)
    tokens.append(a.claim("043").fencing_token)
    a.release()
    c = world.session("c", 103)
    tokens.append(c.claim("043").fencing_token)
    assert tokens == sorted(set(tokens)) and len(tokens) == 4
    assert world.store.read_claim("043").fencing_token == tokens[-1]
    assert c.claim("044").outcome == "holding_other"
    c.release()
    assert c.claim("044").fencing_token == 1  # tokens are per plan


def test_a_store_never_lowers_a_fencing_token(world):
    world.session("a", 101).claim("043")
    with pytest.raises(HeartbeatError), world.store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=0, holder=None))
    assert world.store.read_claim("043").fencing_token == 1


# -- release outcomes (design: release) --------------------------------------------------


def test_release_outcomes(world):
    a = world.session("a", 101)
    assert a.release().outcome == "not_held"
    token = a.claim("043").fencing_token
    before = world.state()
    stale = a.release("043", fencing_token=token + 1)
    assert (stale.outcome, stale.released) == ("stale_token", False)
    assert world.state() == before
    assert a.release("044").outcome == "not_held"
    done = a.release("043", fencing_token=token, reason="done")
    assert (done.outcome, done.released) == ("released", True)
    ledger = world.store.read_claim("043")
    assert (ledger.holder, ledger.fencing_token, ledger.release_reason) == (None, token, "done")
    assert world.store.read_session("a").plan_id is None


def test_a_displaced_holder_learns_of_its_loss_once_and_its_old_token_is_refused(world):
    a = world.session("a", 101)
    a.claim("043")
    world.clock.advance(301)
    b = world.session("b", 102)
    b.claim("043", force=True)
    assert world.store.read_session("a").plan_id is None  # one holder for kata readers
    lost = a.heartbeat().claim_lost
    assert (lost.plan_id, lost.taken_by, lost.reason, lost.fencing_token) == (
        "043",
        "b",
        "forced_stale",
        1,
    )
    assert a.heartbeat().claim_lost is None
    assert a.release("043", fencing_token=1).outcome == "stale_token"
    assert world.store.read_claim("043").holder == "b"


# -- sessions: start, adoption, end (invariant 7) ----------------------------------------


def test_ending_releases_the_claim_marks_the_record_and_logs_every_change(world):
    a = world.session("a", 101)
    a.heartbeat()  # an agent call: the session is worth keeping
    a.claim("043")
    a.end("disconnect")
    record = world.store.read_session("a")
    assert (record.plan_id, record.end_reason) == (None, "disconnect")
    assert record.ended_at is not None
    assert world.store.read_claim("043").holder is None
    assert [kind for kind, _, _ in world.events()] == [
        "session_started",
        "claim_granted",
        "claim_released",
        "session_ended",
    ]


def test_a_second_live_process_with_the_same_id_runs_as_a_new_session(world):
    first = world.session("conv", 101)
    first.claim("043")
    second = world.session("conv", 102)
    assert second.session_id != "conv"
    assert second.record.previous_session == "conv"
    assert second.claim("043").outcome == "held_by_other"
    first.end("disconnect")
    assert world.store.read_session(second.session_id).ended_at is None


def test_a_dead_processs_record_is_adopted_with_its_claim(world):
    a = world.session("a", 101)
    started = world.store.read_session("a").started_at
    a.claim("043")
    world.probe.dead.add(101)
    world.clock.advance(60)
    again = world.session("a", 201)
    view = again.view_self()
    assert (view.session_id, view.started_at, view.plan_id, view.fencing_token, view.pid) == (
        "a",
        started,
        "043",
        1,
        201,
    )
    assert world.store.read_claim("043").holder_pid == 201


# -- reading never modifies (invariant 6) ------------------------------------------------


def test_reading_never_modifies_the_store(world):
    a = world.session("a", 101)
    b = world.session("b", 102)
    a.claim("043")
    world.clock.advance(400)
    world.probe.dead.add(102)
    before = world.state()
    listed = a.list_sessions(include_ended=True)
    assert {v.session_id: v.status for v in listed.sessions} == {"a": "stale", "b": "dead"}
    a.view_self()
    world.store.plan_history("043", 10)
    assert world.state() == before
    del b


# -- the unit of work --------------------------------------------------------------------


def test_a_transaction_that_raises_changes_nothing(world):
    world.session("a", 101).claim("043")
    before = world.state()
    with pytest.raises(RuntimeError), world.store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=9, holder="x"))
        tx.write_session(SessionRecord(session_id="x", plan_id="043"))
        tx.append_event(Event(at=world.clock(), event="claim_granted", session_id="x"))
        assert tx.read_claim("043").holder == "x"  # the transaction sees its own writes
        raise RuntimeError("abort")
    assert world.state() == before


def test_transactions_exclude_each_other(world):
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with world.store.transaction():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    try:
        with pytest.raises(StoreBusyError), world.store.transaction(timeout=0.05):
            pass
    finally:
        release.set()
        holder.join(10)
    with world.store.transaction(timeout=5):
        pass


def test_racing_claims_from_threads_grant_one_holder_and_unique_tokens(world):
    sessions = [world.session(f"s{i}", 200 + i) for i in range(6)]
    granted: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(sessions))

    def contend(service: SessionService) -> None:
        for _ in range(20):
            barrier.wait(10)
            result = service.claim("043")
            if result.claimed and result.outcome == "claimed":
                with lock:
                    granted.append((service.session_id, result.fencing_token))
                    holders = {s.session_id for s in sessions if s.record.plan_id == "043"}
                    assert holders <= {service.session_id}
                service.release("043")

    threads = [threading.Thread(target=contend, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    tokens = sorted(token for _, token in granted)
    assert len(tokens) >= 20  # at least one grant per round
    assert tokens == list(range(1, len(tokens) + 1))  # never a repeat, never a gap
    assert world.store.read_claim("043").fencing_token == tokens[-1]


# -- the seam's own answers --------------------------------------------------------------


def test_plan_history_is_the_most_recent_events_of_that_plan_oldest_first(world):
    a = world.session("a", 101)
    for _ in range(4):
        a.claim("043")
        a.claim("043")  # idempotent: logs nothing
        a.release("043")
        a.claim("044")
        a.release("044")
    history = world.store.plan_history("043", 3)
    assert [(e.event, e.fencing_token) for e in history] == [
        ("claim_released", 3),
        ("claim_granted", 4),
        ("claim_released", 4),
    ]
    assert world.store.plan_history("045", 5) == []


def test_the_store_supplies_now(world):
    assert world.store.now() == world.clock()
    world.clock.advance(90)
    with world.store.transaction() as tx:
        assert tx.now() == world.clock()
    assert world.store.now() - world.clock() == timedelta(0)


def test_ids_unsafe_as_names_never_reach_the_store(world):
    before = world.state()
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(HeartbeatError), world.store.transaction() as tx:
            tx.write_session(SessionRecord(session_id=bad))
    assert world.state() == before


def test_waiting_for_a_change_is_a_bounded_hint_that_never_raises(store):
    """``wait_for_change``: False after its timeout when nothing changed; a store
    that hears hints (``wakes_on_change``) returns True after a committed claim
    change, one that does not sleeps and returns False. Never raises."""
    assert store.wait_for_change(0) is False  # a listening store starts listening
    assert store.wait_for_change(0.2) is False
    with store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="046", fencing_token=1, holder=None))
    assert store.wait_for_change(5.0 if store.wakes_on_change else 0.2) is store.wakes_on_change


# -- waiting for a plan (issue 12 part 2: the queue lives in the ledger) -----------------


def _until(world: World, seconds: float = 60.0) -> Any:
    return world.clock() + timedelta(seconds=seconds)


def test_a_plan_watch_wakes_on_a_committed_change_of_that_plan_only(store):
    """``watch_claim``: False after its timeout when the plan's ledger did not
    change (another plan's change does not count), True soon after a committed
    write of it; a discarded transaction changes nothing. Closing is idempotent."""
    watch = store.watch_claim("050")
    try:
        assert watch.wait(0.3) is False
        with store.transaction() as tx:
            tx.write_claim(ClaimRecord(plan_id="051", fencing_token=1, holder=None))
        assert watch.wait(0.5) is False
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.write_claim(ClaimRecord(plan_id="050", fencing_token=1, holder=None))
            raise RuntimeError("discard")
        assert watch.wait(0.5) is False
        with store.transaction() as tx:
            tx.write_claim(ClaimRecord(plan_id="050", fencing_token=1, holder=None))
        assert watch.wait(5.0) is True
    finally:
        watch.close()
        watch.close()


def test_waiters_are_granted_in_arrival_order_across_sessions(world):
    holder, b, c = world.session("a", 101), world.session("b", 102), world.session("c", 103)
    holder.claim("043")
    assert b.wait_attempt("043", _until(world)).place == 1
    world.clock.advance(1)
    assert c.wait_attempt("043", _until(world)).place == 2
    assert [w.session_id for w in world.store.read_claim("043").waiters] == ["b", "c"]
    holder.release("043")
    first = c.wait_attempt("043", _until(world))
    assert (first.done, first.result().outcome, first.place) == (False, "reserved", 2)
    granted = b.wait_attempt("043", _until(world))
    assert (granted.done, granted.result().outcome) == (True, "claimed")
    ledger = world.store.read_claim("043")
    assert (ledger.holder, [w.session_id for w in ledger.waiters]) == ("b", ["c"])
    b.release("043")
    assert c.wait_attempt("043", _until(world)).result().outcome == "claimed"
    assert world.store.read_claim("043").waiters == []


def test_claim_plan_does_not_jump_a_live_queue(world):
    holder, b, d = world.session("a", 101), world.session("b", 102), world.session("d", 104)
    holder.claim("043")
    b.wait_attempt("043", _until(world))
    holder.release("043")
    refused = d.claim("043")
    assert (refused.outcome, refused.claimed, refused.holder.session_id) == (
        "reserved",
        False,
        "b",
    )
    assert "wait_for_plan" in refused.message
    assert world.store.read_claim("043").holder is None


def test_dead_ended_and_expired_waiters_are_skipped(world):
    holder = world.session("a", 101)
    dead, ended, expired, c = (
        world.session(s, p) for s, p in [("x", 7), ("y", 8), ("z", 9), ("c", 3)]
    )
    holder.claim("043")
    expired.wait_attempt("043", _until(world, 5))
    dead.wait_attempt("043", _until(world))
    ended.wait_attempt("043", _until(world))
    world.probe.dead.add(7)
    ended.end("disconnect")
    world.clock.advance(10)
    holder.release("043")
    step = c.wait_attempt("043", _until(world))
    assert (step.done, step.result().outcome) == (True, "claimed")
    assert world.store.read_claim("043").waiters == []


def test_leaving_the_queue_removes_the_entry_or_keeps_it_for_the_grace(world):
    holder, b = world.session("a", 101), world.session("b", 102)
    holder.claim("043")
    b.wait_attempt("043", _until(world))
    b.leave_queue("043", grace=True)
    (entry,) = world.store.read_claim("043").waiters
    assert entry.until == world.clock() + timedelta(seconds=10)
    b.leave_queue("043")
    assert world.store.read_claim("043").waiters == []
    assert world.store.read_claim("043").holder == "a"


def test_a_forced_takeover_is_not_held_back_by_the_queue(world):
    holder, b, d = world.session("a", 101), world.session("b", 102), world.session("d", 104)
    holder.claim("043")
    world.clock.advance(400)  # everyone stale: b's entry still counts for nobody...
    b.heartbeat()  # ...but b beats, so it is a live waiter
    b.wait_attempt("043", _until(world))
    d.heartbeat()
    assert d.claim("043").outcome == "held_by_other"  # stale holder, no force
    forced = d.claim("043", force=True)
    assert forced.outcome == "taken_over"
    assert [w.session_id for w in world.store.read_claim("043").waiters] == ["b"]


def test_an_ended_session_is_never_granted_by_a_wait(world):
    b = world.session("b", 102)
    b.end("disconnect")
    with pytest.raises(HeartbeatError, match="ended"):
        b.wait_attempt("043", _until(world))
    assert world.store.read_claim("043") is None
