"""The store seam: one place chooses the store, a transaction commits all or
nothing, the store supplies "now", a plan's history is read from the end, and
nothing above the seam names a concrete store.

Directory faults are injected with ``atomic.FAILPOINTS`` (the fault suite's
hooks); cross-process exclusion uses a real second process.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import T0, FakeClock, FakeProbe, make_identity
from mcp_server_heartbeat.domain.errors import ConfigError, StoreBusyError, StoreError
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import ClaimRecord, Event, SessionRecord
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.session.handover import end_session_record
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store import Store, open_light_reader, open_store
from mcp_server_heartbeat.store.directory import atomic, events
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from mcp_server_heartbeat.store.memory import MemoryStore

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "mcp_server_heartbeat"


@pytest.fixture(autouse=True)
def _no_failpoints() -> Iterator[None]:
    yield
    atomic.FAILPOINTS.clear()


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Store:
    if request.param == "memory":
        return MemoryStore(clock=clock, lock_timeout=0.5)
    directory = DirectoryStore(tmp_path / "sessions", lock_timeout=0.5, clock=clock)
    directory.prepare()
    return directory


def _event(plan_id: str | None, n: int, kind: str = "claim_granted") -> Event:
    return Event(
        at=T0 + timedelta(seconds=n),
        event=kind,  # type: ignore[arg-type]
        session_id=f"s{n}",
        plan_id=plan_id,
        fencing_token=n,
    )


def _fail_for(part: str, code: int = errno.ENOSPC):
    def hook(target: Path) -> None:
        if part in str(target):
            raise OSError(code, os.strerror(code))

    return hook


# -- transactions: all or nothing ------------------------------------------------------


def test_an_exception_inside_the_block_writes_nothing(store: Store) -> None:
    with pytest.raises(KeyError), store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="p", fencing_token=1, holder="a"))
        tx.write_session(SessionRecord(session_id="a", plan_id="p", fencing_token=1))
        tx.append_event(_event("p", 1))
        assert tx.read_claim("p") is not None  # reads see the transaction's own writes
        assert tx.read_session("a") is not None
        raise KeyError("boom")
    assert store.read_claim("p") is None
    assert store.read_session("a") is None
    assert store.read_events() == []


def test_reads_inside_see_own_writes_and_deletes(store: Store) -> None:
    with store.transaction() as tx:
        tx.write_session(SessionRecord(session_id="a"))
    with store.transaction() as tx:
        assert tx.delete_session("a") is True
        assert tx.read_session("a") is None
        assert store.read_session("a") is not None  # not yet committed
        assert tx.delete_session("gone") is False
    assert store.read_session("a") is None


def test_a_ledger_may_not_lower_its_fencing_token(store: Store) -> None:
    with store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="p", fencing_token=5))
    with pytest.raises(StoreError, match="lower"), store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="p", fencing_token=4))
    assert store.read_claim("p").fencing_token == 5  # type: ignore[union-attr]


def test_transactions_are_not_reentrant(store: Store) -> None:
    with (
        store.transaction(),
        pytest.raises(RuntimeError, match="not re-entrant"),
        store.transaction(),
    ):
        pass
    with store.transaction() as tx:  # the first one left cleanly
        tx.write_session(SessionRecord(session_id="after"))
    assert store.read_session("after") is not None


def test_directory_ledger_failure_writes_no_record_and_no_event(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "hb")
    store.prepare()
    atomic.FAILPOINTS["rename"] = _fail_for("/claims/")
    with pytest.raises(StoreError, match="No space left"), store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="p", fencing_token=1, holder="a"))
        tx.write_session(SessionRecord(session_id="a", plan_id="p", fencing_token=1))
        tx.append_event(_event("p", 1))
    assert store.read_claim("p") is None
    assert store.read_session("a") is None
    assert not (tmp_path / "hb" / "events.jsonl").exists()


def test_directory_record_failure_after_the_ledger_commits_the_claim_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DirectoryStore(tmp_path / "hb")
    store.prepare()
    atomic.FAILPOINTS["rename"] = _fail_for("a.json")
    with caplog.at_level(logging.WARNING), store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="p", fencing_token=1, holder="a"))
        tx.write_session(SessionRecord(session_id="a", plan_id="p", fencing_token=1))
        tx.append_event(_event("p", 1))
    assert store.read_claim("p").holder == "a"  # type: ignore[union-attr]
    assert store.read_session("a") is None
    assert [e.event for e in store.read_events()] == ["claim_granted"]
    assert "session record a not written (the next heartbeat retries)" in caplog.text


def test_directory_record_failure_without_a_ledger_raises_and_logs_no_event(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path / "hb")
    store.prepare()
    atomic.FAILPOINTS["write"] = _fail_for("a.json")
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.write_session(SessionRecord(session_id="a"))
        tx.append_event(_event(None, 1, "session_started"))
    assert store.read_session("a") is None
    assert store.read_events() == []


def test_directory_event_failure_is_logged_and_the_change_stands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DirectoryStore(tmp_path / "hb")
    store.prepare()
    (tmp_path / "hb" / "events.jsonl").mkdir()  # appending fails
    with caplog.at_level(logging.WARNING), store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="p", fencing_token=1, holder="a"))
        tx.append_event(_event("p", 1))
    assert store.read_claim("p") is not None
    assert "event claim_granted not logged" in caplog.text


# -- transactions: exclusive -------------------------------------------------------------


def test_memory_transactions_exclude_each_other_across_threads() -> None:
    store = MemoryStore(lock_timeout=5.0)
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction() as tx:
            tx.write_claim(ClaimRecord(plan_id="p", fencing_token=1))
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    assert store.busy_holder() is not None
    with pytest.raises(StoreBusyError, match="nothing was changed"), store.transaction(0.05):
        pass
    leave.set()
    holder.join(10)
    assert store.busy_holder() is None
    assert store.read_claim("p") is not None


def test_memory_read_modify_write_from_many_threads_loses_no_token() -> None:
    store = MemoryStore(lock_timeout=30.0)

    def bump() -> None:
        for _ in range(200):
            with store.transaction() as tx:
                ledger = tx.read_claim("p")
                token = 0 if ledger is None else ledger.fencing_token
                tx.write_claim(ClaimRecord(plan_id="p", fencing_token=token + 1))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert store.read_claim("p").fencing_token == 1600  # type: ignore[union-attr]


HOLD_TX = """
import sys
from pathlib import Path
from mcp_server_heartbeat.domain.models import ClaimRecord
from mcp_server_heartbeat.store.directory.store import DirectoryStore
store = DirectoryStore(Path(sys.argv[1]))
with store.transaction() as tx:
    tx.write_claim(ClaimRecord(plan_id="p", fencing_token=7, holder="child"))
    print("inside", flush=True)
    sys.stdin.read()
"""


def test_directory_transactions_exclude_another_process(tmp_path: Path) -> None:
    directory = tmp_path / "hb"
    store = DirectoryStore(directory)
    store.prepare()
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_TX, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "inside\n"
        with pytest.raises(StoreBusyError, match=f"by PID {child.pid}"), store.transaction(0.2):
            pass
        holder = store.busy_holder()
        assert holder is not None and holder["pid"] == child.pid
        assert store.read_claim("p") is None  # buffered until the child commits
    finally:
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(30) == 0
    with store.transaction() as tx:
        assert tx.read_claim("p").holder == "child"  # type: ignore[union-attr]


# -- the store's clock ---------------------------------------------------------------------


def test_the_service_judges_with_the_store_clock(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    service = SessionService(store, make_identity("me", 101), Thresholds(), 30.0)
    record = service.start()
    assert record.started_at == T0 == store.now()
    with store.transaction() as tx:
        assert tx.now() == T0


def test_the_service_runs_on_the_memory_store(clock: FakeClock, probe: FakeProbe) -> None:
    """Every lease rule the service applies goes through the protocol only."""
    store = MemoryStore(clock=clock)

    def start(session_id: str, pid: int) -> SessionService:
        service = SessionService(
            store, make_identity(session_id, pid), Thresholds(), 30.0, clock=clock, probe=probe
        )
        service.start()
        return service

    a, b = start("a", 101), start("b", 102)
    assert a.claim("p").outcome == "claimed"
    assert b.claim("p").outcome == "held_by_other"
    probe.dead.add(101)
    taken = b.claim("p")
    assert (taken.outcome, taken.fencing_token) == ("taken_over", 2)
    assert store.read_session("a").plan_id is None  # type: ignore[union-attr]
    assert b.release("p").outcome == "released"
    b.end("disconnect")
    assert [e.event for e in store.plan_history("p", 10)] == [
        "claim_granted",
        "claim_taken_over",
        "claim_released",
    ]
    assert store.read_session("b").ended_at is not None  # type: ignore[union-attr]


def test_end_session_record_takes_one_transaction(clock: FakeClock, probe: FakeProbe) -> None:
    """On a store whose transactions are not re-entrant (memory), ending a record
    of another process claims its plan's release and the end in one unit."""
    store = MemoryStore(clock=clock, lock_timeout=0.2)
    gone = SessionService(
        store, make_identity("gone", 103), Thresholds(), 30.0, clock=clock, probe=probe
    )
    gone.start()
    gone.claim("p")
    ended = end_session_record(store, "gone", "hook", lambda _r: True, clock=clock, probe=probe)
    assert ended is not None and ended.end_reason == "hook"
    assert store.read_claim("p").holder is None  # type: ignore[union-attr]
    kinds = [e.event for e in store.read_events()]
    assert kinds[-2:] == ["claim_released", "session_ended"]


def test_a_failed_commit_leaves_the_service_state_as_it_was(
    tmp_path: Path, clock: FakeClock, probe: FakeProbe
) -> None:
    store = DirectoryStore(tmp_path / "hb", clock=clock)
    store.prepare()
    service = SessionService(
        store, make_identity("me", 101), Thresholds(), 30.0, clock=clock, probe=probe
    )
    service.start()
    token = service.claim("p").fencing_token
    atomic.FAILPOINTS["rename"] = _fail_for("/claims/")
    with pytest.raises(StoreError):
        service.release("p")
    atomic.FAILPOINTS.clear()
    assert service.record.plan_id == "p"  # the release did not happen, in memory either
    assert service.release("p", fencing_token=token).outcome == "released"


# -- plan history ---------------------------------------------------------------------------


def test_plan_history_reads_from_the_end_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = events.EventLog(tmp_path, rotate_at=2000, keep=4)
    for n in range(1, 101):
        log.append(_event("old" if n <= 80 else ("p" if n % 2 else "q"), n))
    assert log.generation(4).exists()  # the old events are in rotated generations
    opened: list[str] = []
    parsed: list[bytes] = []
    real_backwards, real_parse = events._lines_backwards, events._parse

    def backwards(path: Path) -> Iterator[bytes]:
        opened.append(path.name)
        yield from real_backwards(path)

    def parse(line: bytes) -> Event | None:
        parsed.append(line)
        return real_parse(line)

    monkeypatch.setattr(events, "_lines_backwards", backwards)
    monkeypatch.setattr(events, "_parse", parse)
    recent = log.plan_history("p", 3)
    assert [e.fencing_token for e in recent] == [95, 97, 99]  # the latest three, oldest first
    assert len(parsed) == 3  # only lines of the plan, only until three were found
    assert opened[0] == "events.jsonl"  # newest first
    assert not {"events.3.jsonl", "events.4.jsonl"} & set(opened)  # older ones not opened
    every = log.plan_history("p", None)
    assert [e.fencing_token for e in every] == list(range(81, 101, 2))
    assert len(log.plan_history("old", 100)) == len(
        [e for e in log.read()[0] if e.plan_id == "old"]
    )


def test_plan_history_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    log = events.EventLog(tmp_path)
    log.append(_event("p", 1))
    with open(log.path, "ab") as stream:
        stream.write(b'{"not": "an event", "plan_id": "p"}\n{"torn": "p\n')
    log.append(_event("p", 2))
    assert [e.fencing_token for e in log.plan_history("p", 5)] == [1, 2]


def test_plan_history_and_counts_agree_across_stores(store: Store) -> None:
    with store.transaction() as tx:
        for n, kind in enumerate(["claim_granted", "claim_lost", "claim_released"], start=1):
            tx.append_event(_event("p", n, kind))
        tx.append_event(_event("q", 9))
    assert [e.event for e in store.plan_history("p", 2)] == ["claim_lost", "claim_released"]
    assert store.plan_history("p", 0) == []
    assert len(store.plan_history("p", None)) == 3
    assert store.count_plan_events("p", frozenset({"claim_granted", "claim_released"})) == 2
    assert store.unreadable_events() == 0


# -- choosing the store -----------------------------------------------------------------------


def test_open_store_returns_the_directory_by_default(tmp_path: Path) -> None:
    config = resolve_config(Flags(root=str(tmp_path), dir="hb"), {}, tmp_path)
    store = open_store(config)
    assert isinstance(store, DirectoryStore)
    assert store.location == str(tmp_path / "hb")
    assert not store.exists() and not (tmp_path / "hb").exists()  # opening writes nothing
    store.prepare()
    assert store.exists()
    assert open_light_reader(config).session_records() == []
    assert isinstance(open_store(config, url="directory://"), DirectoryStore)


@pytest.mark.parametrize("url", ["mysql://user:s3cret@db/heartbeat", "sqlite:///x.db", "x"])
def test_open_store_refuses_an_unknown_scheme_naming_what_is_accepted(
    tmp_path: Path, url: str
) -> None:
    config = resolve_config(Flags(root=str(tmp_path)), {}, tmp_path)
    with pytest.raises(ConfigError) as caught:
        open_store(config, url=url)
    message = str(caught.value)
    assert "is not accepted" in message and "'directory'" in message
    assert "s3cret" not in message  # a URL's password never reaches an error
    with pytest.raises(ConfigError):
        open_light_reader(config, url=url)


def test_nothing_outside_the_store_package_names_a_concrete_store() -> None:
    pattern = re.compile(r"DirectoryStore|store\.directory\b|dir_path|MemoryStore")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line) and not (
                relative == "host/config.py" and "def dir_path" in line
            ):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
