"""The PostgreSQL store's own guarantees, beyond the contract suite (which runs
on it too, tests/contract): the schema's last line of defence, migrations run
once by concurrent servers, tokens under a real race of connections, the
database's clock, bounded transactions, faults (unreachable server, killed
backends) and the project partition.

Needs ``HEARTBEAT_TEST_DSN`` (skips with the reason otherwise; fails when
CI=true); every store lives in its own random schema, dropped after the test.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import HOST, FakeProbe, make_identity
from mcp_server_heartbeat.domain.errors import StoreBusyError, StoreError
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import ClaimRecord, Event, SessionRecord
from mcp_server_heartbeat.session.service import SessionService
from pg_support import drop_schema, make_store, random_schema, test_dsn


@pytest.fixture
def cleanups() -> Iterator[list[Callable[[], None]]]:
    done: list[Callable[[], None]] = []
    yield done
    while done:
        done.pop()()


@pytest.fixture
def dsn() -> str:
    return test_dsn()


def _admin(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _session(store: Any, session_id: str, pid: int, probe: FakeProbe | None = None) -> Any:
    service = SessionService(
        store,
        make_identity(session_id, pid, HOST),
        Thresholds(stale_after=300.0, idle_after=600.0),
        interval=30.0,
        probe=probe or FakeProbe(),
    )
    service.start()
    return service


def _tagged(dsn: str, name: str) -> str:
    """``dsn`` with an application_name of its own, to find its backends."""
    return f"{dsn}{'&' if '?' in dsn else '?'}application_name={name}"


# -- the schema ------------------------------------------------------------------------


def test_the_partial_unique_index_refuses_a_second_live_claim_even_from_raw_sql(dsn, cleanups):
    import psycopg

    store = make_store(cleanups)
    _session(store, "a", 101).claim("043")
    with _admin(dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation) as caught:
        conn.execute(
            f'INSERT INTO "{store.schema}".claims (project, plan_id, fencing_token, holder, '
            "live, record) VALUES (%s, '043', 2, 'intruder', true, '{}')",
            [store.project],
        )
    assert "claims_one_live_per_plan" in str(caught.value)
    assert store.read_claim("043").holder == "a"


def test_ten_servers_starting_at_once_migrate_once(dsn, cleanups):
    from mcp_server_heartbeat.store.postgres import PostgresStore

    schema = random_schema()
    cleanups.append(lambda: drop_schema(dsn, schema))
    stores = [PostgresStore(dsn, f"p{i}", schema=schema, pool=False) for i in range(10)]
    barrier = threading.Barrier(len(stores))
    versions: list[int] = []
    failures: list[BaseException] = []

    def start(store: Any) -> None:
        try:
            barrier.wait(30)
            versions.append(store.migrate())
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert versions == [1] * 10
    with _admin(dsn) as conn:
        rows = conn.execute(f'SELECT version FROM "{schema}".schema_version').fetchall()
    assert rows == [(1,)]  # applied once: a second application would have failed on the key
    assert stores[0].migrate() == 1  # idempotent


def test_a_schema_name_from_configuration_is_validated():
    from mcp_server_heartbeat.domain.errors import ConfigError
    from mcp_server_heartbeat.store.postgres import PostgresStore

    for bad in ('heartbeat"; DROP TABLE x; --', "Heartbeat", "1x", "", "a" * 64):
        with pytest.raises(ConfigError, match="schema name"):
            PostgresStore("postgresql://u@h/db", "p", schema=bad)


# -- tokens and claims under real concurrency ----------------------------------------------


def test_tokens_strictly_increase_under_an_8_connection_race_on_one_plan(dsn, cleanups):
    first = make_store(cleanups)
    # Eight servers: each its own store object and connection pool on one schema.
    stores = [first] + [
        make_store(cleanups, schema=first.schema, pool=(i % 2 == 0)) for i in range(7)
    ]
    sessions = [_session(store, f"s{i}", 300 + i) for i, store in enumerate(stores)]
    granted: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(sessions))
    failures: list[BaseException] = []

    def contend(service: SessionService) -> None:
        try:
            for _ in range(8):
                barrier.wait(60)
                result = service.claim("043")
                if result.claimed and result.outcome == "claimed":
                    with lock:
                        granted.append(result.fencing_token)
                    service.release("043")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=contend, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert failures == []
    assert len(granted) >= 8
    assert sorted(granted) == list(range(1, len(granted) + 1))  # no repeat, no gap
    with _admin(dsn) as conn:
        counter = conn.execute(
            f'SELECT fencing_token FROM "{first.schema}".plans WHERE plan_id = %s', ["043"]
        ).fetchone()
        leases = conn.execute(
            f'SELECT fencing_token, live FROM "{first.schema}".claims WHERE plan_id = %s '
            "ORDER BY fencing_token",
            ["043"],
        ).fetchall()
    assert counter == (len(granted),)
    assert [token for token, _ in leases] == sorted(granted)
    assert not any(live for _, live in leases)  # all released


def test_the_store_refuses_to_lower_the_counter_in_the_database_too(cleanups):
    store = make_store(cleanups)
    _session(store, "a", 101).claim("043")
    with store.transaction() as tx:
        tx.read_claim("043")
    tx = None
    with pytest.raises(StoreError, match="lower"), store.transaction() as tx:
        tx.claims["043"] = ClaimRecord(plan_id="043", fencing_token=0)  # past the buffer check
    assert store.read_claim("043").fencing_token == 1


# -- time ---------------------------------------------------------------------------------


def test_now_is_the_databases_clock_timestamp_not_the_frozen_transaction_start(dsn, cleanups):
    store = make_store(cleanups)  # no injected clock
    with _admin(dsn) as conn:
        server = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    assert abs(store.now() - server) < timedelta(seconds=5)
    assert store.now().tzinfo is not None and store.now().utcoffset() == timedelta(0)
    with store.transaction() as tx:
        before = tx.now()
        tx._conn.execute("SELECT pg_sleep(0.02)")
        after = tx.now()
    assert after - before >= timedelta(milliseconds=20)  # now() would repeat the start


def test_every_transaction_is_bounded(cleanups):
    store = make_store(cleanups, lock_timeout=1.5)
    with store.transaction() as tx:
        settings = [
            tx._conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
        ]
    assert settings == ["1500ms", "30s", "1min"]


# -- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", [False, True])
def test_an_unreachable_database_is_a_store_error_without_the_password(pool):
    from mcp_server_heartbeat.store.postgres import PostgresStore

    store = PostgresStore(
        "postgresql://heartbeat:s3cret-pw@127.0.0.1:1/test?password=s3cret-pw",
        "p",
        pool=pool,
    )
    store.pool_timeout = 1.0
    try:
        for attempt in (store.prepare, lambda: store.read_claim("043"), store.now):
            with pytest.raises(StoreError) as caught:
                attempt()
            message = str(caught.value)
            assert "s3cret" not in message
            assert "postgresql://heartbeat@127.0.0.1:1/test#p" in message
            assert "unreachable" in message and "nothing was changed" in message
    finally:
        store.close()


def _terminate(dsn: str, application_name: str) -> int:
    with _admin(dsn) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s "
            "AND pid <> pg_backend_pid()",
            [application_name],
        ).fetchall()
    return len(rows)


def test_a_database_restart_mid_run_loses_no_claim_and_makes_no_second_holder(dsn, cleanups):
    name = "hbtest_" + uuid.uuid4().hex[:8]
    store = make_store(cleanups, schema=None)
    store_tagged = make_store(cleanups, schema=store.schema)
    store_tagged._url = _tagged(dsn, name)  # same schema; its backends carry our name
    store_tagged.close()
    a = _session(store_tagged, "a", 101)
    assert a.claim("043").fencing_token == 1
    assert _terminate(dsn, name) >= 1  # every backend of this server is gone
    assert a.heartbeat() is not None  # the pool replaced the dead connection
    b = _session(store_tagged, "b", 102)
    assert b.claim("043").outcome == "held_by_other"
    assert _terminate(dsn, name) >= 1
    assert store_tagged.read_claim("043").holder == "a"
    with _admin(dsn) as conn:
        live = conn.execute(
            f'SELECT holder, fencing_token FROM "{store.schema}".claims WHERE live'
        ).fetchall()
    assert live == [("a", 1)]


def test_a_backend_killed_inside_a_unit_of_work_commits_nothing(dsn, cleanups):
    name = "hbtest_" + uuid.uuid4().hex[:8]
    store = make_store(cleanups)
    store._url = _tagged(dsn, name)
    store.close()
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=1, holder="x"))
        tx.write_session(SessionRecord(session_id="x", plan_id="043"))
        tx.append_event(Event(at=datetime.now(UTC), event="claim_granted", session_id="x"))
        assert _terminate(dsn, name) >= 1  # this unit's backend among them
    assert "nothing was changed" in str(caught.value)
    assert store.read_claim("043") is None  # never reported, never committed
    assert store.read_session("x") is None and store.read_events() == []


def test_units_of_work_of_one_project_exclude_each_other_across_stores(cleanups):
    one = make_store(cleanups)
    two = make_store(cleanups, schema=one.schema)
    other_project = make_store(cleanups, schema=one.schema, project="other")
    with one.transaction():
        with pytest.raises(StoreBusyError, match="nothing was changed"), two.transaction(0.1):
            pass
        with other_project.transaction(0.1):  # another repository is not blocked
            pass
        holder = two.busy_holder()
    assert holder is not None and "holds a unit of work" in holder["description"]
    assert two.busy_holder() is None


# -- partition and reads ----------------------------------------------------------------


def test_projects_sharing_a_database_never_see_each_other(cleanups):
    mine = make_store(cleanups)
    theirs = make_store(cleanups, schema=mine.schema, project="another/repo")
    _session(mine, "a", 101).claim("043")
    assert theirs.read_claim("043") is None
    assert theirs.list_sessions() == ([], [])
    assert list(theirs.iter_claims()) == [] and theirs.read_events() == []
    assert _session(theirs, "z", 201).claim("043").fencing_token == 1
    assert mine.read_claim("043").holder == "a"


def test_records_round_trip_every_field_including_unknown_ones(cleanups):
    store = make_store(cleanups)
    record = SessionRecord(
        session_id="a", plan_id=None, tags={"kind": "x", "custom": [1, 2]}, written_by="kata"
    )
    claim = ClaimRecord(plan_id="043", fencing_token=4, holder="a", note={"n": 1})
    with store.transaction() as tx:
        tx.write_session(record)
        tx.write_claim(claim)
    assert store.read_session("a").model_dump() == record.model_dump()
    assert store.read_claim("043").model_dump() == claim.model_dump()


def test_plan_history_reads_only_the_rows_asked_for_with_sql_limit(cleanups):
    store = make_store(cleanups)
    a = _session(store, "a", 101)
    for _ in range(10):
        a.claim("043")
        a.release("043")
    seen: list[tuple[str, list[Any]]] = []
    rows = store._rows

    def spy(text: str, params: list[Any]) -> list[tuple[Any, ...]]:
        found = rows(text, params)
        seen.append((text, params, len(found)))
        return found

    store._rows = spy
    history = store.plan_history("043", 3)
    assert [(e.event, e.fencing_token) for e in history] == [
        ("claim_released", 9),
        ("claim_granted", 10),
        ("claim_released", 10),
    ]
    ((text, params, fetched),) = seen
    assert "LIMIT %s" in text and params[-1] == 3 and fetched == 3


def test_a_committed_claim_change_notifies_listeners_and_a_rolled_back_one_does_not(dsn, cleanups):
    import json

    from mcp_server_heartbeat.store.postgres.transaction import claims_channel

    store = make_store(cleanups)
    with _admin(dsn) as listener:
        listener.execute(f'LISTEN "{claims_channel(store.schema)}"')
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.write_claim(ClaimRecord(plan_id="044", fencing_token=1, holder="x"))
            raise RuntimeError("abort")
        _session(store, "a", 101).claim("043")
        hints = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
    assert hints == [
        {"project": store.project, "plan_id": "043", "fencing_token": 1, "holder": "a"}
    ]


def test_a_connection_lost_at_commit_is_not_reported_as_done_nor_as_nothing_changed(
    dsn, cleanups, monkeypatch
):
    from mcp_server_heartbeat.store.postgres.transaction import PostgresTransaction

    name = "hbtest_" + uuid.uuid4().hex[:8]
    store = make_store(cleanups)
    store._url = _tagged(dsn, name)
    store.close()
    write = PostgresTransaction.commit

    def commit_then_lose_the_backend(tx: PostgresTransaction) -> None:
        write(tx)  # every write sent; the COMMIT that follows meets a dead backend
        assert _terminate(dsn, name) >= 1

    monkeypatch.setattr(PostgresTransaction, "commit", commit_then_lose_the_backend)
    with pytest.raises(StoreError) as caught, store.transaction() as tx:
        tx.write_claim(ClaimRecord(plan_id="043", fencing_token=1, holder="x"))
    message = str(caught.value)
    assert "whether the change was stored is unknown" in message
    assert "nothing was changed" not in message
    monkeypatch.undo()
    assert store.read_claim("043") is None  # here the server never got the COMMIT


def test_the_status_line_reader_gives_records_and_the_databases_clock(dsn, cleanups):
    from mcp_server_heartbeat.store.postgres.light import LightPostgresReader

    store = make_store(cleanups)
    _session(store, "a", 101)
    reader = LightPostgresReader(dsn, store.project, schema=store.schema)
    records = reader.session_records()
    assert [r["session_id"] for r in records] == ["a"]
    with _admin(dsn) as conn:
        server = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    assert abs(reader.now() - server) < timedelta(seconds=5)
    assert LightPostgresReader("postgresql://u@127.0.0.1:1/x", "p").session_records() == []


def test_the_status_line_reads_the_configured_schema(dsn, cleanups, tmp_path):
    from mcp_server_heartbeat.host.config import Flags, resolve_config
    from mcp_server_heartbeat.store import open_light_reader

    store = make_store(cleanups)
    _session(store, "a", 101)
    env = {"HEARTBEAT_PROJECT": store.project, "HEARTBEAT_SCHEMA": store.schema}
    config = resolve_config(Flags(root=str(tmp_path), store=dsn), env, tmp_path)
    records = open_light_reader(config).session_records()
    assert [r["session_id"] for r in records] == ["a"]


def test_pruning_drops_only_this_projects_old_events(cleanups):
    mine = make_store(cleanups)
    theirs = make_store(cleanups, schema=mine.schema, project="another/repo")
    old = datetime(2026, 1, 1, tzinfo=UTC)
    for store in (mine, theirs):
        with store.transaction() as tx:
            for at in (old, old + timedelta(days=10)):
                tx.append_event(Event(at=at, event="session_started", session_id="a"))
    cutoff = old + timedelta(days=1)
    assert mine.prune_events(cutoff, dry_run=True) == 1
    assert len(mine.read_events()) == 2
    assert mine.prune_events(cutoff) == 1
    assert [e.at for e in mine.read_events()] == [old + timedelta(days=10)]
    assert len(theirs.read_events()) == 2
    assert mine.prune_temp_files(cutoff) == [] and mine.unreadable_events() == 0
