"""``mcp-server-heartbeat store import DIR`` into a real PostgreSQL store (issue
item 10): the console script, run as a process against the server named by
``HEARTBEAT_TEST_DSN`` (a throwaway schema), continues every plan's fencing
token upwards from the directory, frees plans held there, never lowers a plan
the store is ahead on, changes nothing when run again, and the next claim
through the service gets the next token. Skips without the DSN (fails when CI=true).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST, FakeProbe, make_identity
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from pg_support import make_store, test_dsn
from stdio_client import CONSOLE_SCRIPT, clean_env
from test_store_cli import ledger

PROJECT = "import-project"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def cleanups() -> Iterator[list[Callable[[], None]]]:
    done: list[Callable[[], None]] = []
    yield done
    while done:
        done.pop()()


def _directory(tmp_path: Path) -> Path:
    """Plan ``free`` free at 3, ``held`` held by s-old at 5, ``ahead`` at 2."""
    where = tmp_path / "hb"
    store = DirectoryStore(where)
    store.prepare()
    for seeded in (ledger("free", 3), ledger("held", 5, "s-old"), ledger("ahead", 2)):
        with store.transaction() as tx:
            tx.write_claim(seeded)
    return where


def _import(tmp_path: Path, source: Path, dsn: str, schema: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CONSOLE_SCRIPT, "store", "import", str(source), "--store", dsn],
        cwd=tmp_path,
        env=clean_env(tmp_path, HEARTBEAT_PROJECT=PROJECT, HEARTBEAT_SCHEMA=schema),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rows(dsn: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row this project has in the store's tables (written_at included)."""
    import psycopg
    from psycopg import sql

    tables = {
        "plans": "SELECT plan_id, fencing_token FROM {}.plans WHERE project = %s ORDER BY 1",
        "claims": "SELECT plan_id, fencing_token, live, record, written_at FROM {}.claims "
        "WHERE project = %s ORDER BY 1, 2",
        "events": "SELECT id, event FROM {}.events WHERE project = %s ORDER BY id",
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            name: conn.execute(sql.SQL(text).format(sql.Identifier(schema)), [PROJECT]).fetchall()
            for name, text in tables.items()
        }


def test_store_import_into_postgresql_continues_tokens_idempotently(tmp_path, cleanups):
    dsn = test_dsn()
    store = make_store(cleanups, project=PROJECT)
    with store.transaction() as tx:
        tx.write_claim(ledger("ahead", 9))  # the store is ahead for this plan
    source = _directory(tmp_path)

    first = _import(tmp_path, source, dsn, store.schema)
    assert first.returncode == 0, first.stderr
    assert "3 plan(s)" in first.stdout, first.stdout
    assert "1 imported, 1 imported free, 1 unchanged, 0 conflict" in first.stdout
    tokens = {claim.plan_id: claim.fencing_token for claim in store.iter_claims()}
    assert tokens == {"free": 3, "held": 5, "ahead": 9}
    held = store.read_claim("held")
    assert held is not None and held.holder is None and held.holder_pid is None
    assert "s-old" in (held.release_reason or "")
    assert DirectoryStore(source).read_claim("held").holder == "s-old"  # type: ignore[union-attr]

    before = _rows(dsn, store.schema)
    second = _import(tmp_path, source, dsn, store.schema)
    assert second.returncode == 0, second.stderr
    assert "0 imported, 0 imported free, 3 unchanged, 0 conflict" in second.stdout
    assert _rows(dsn, store.schema) == before  # not one row rewritten

    for n, (plan, token) in enumerate(tokens.items()):
        service = SessionService(
            store,
            make_identity(f"s{n}", 200 + n, HOST),
            Thresholds(stale_after=300.0, idle_after=600.0),
            interval=30.0,
            probe=FakeProbe(),
        )
        service.start()
        granted = service.claim(plan)
        assert (granted.outcome, granted.fencing_token) == ("claimed", token + 1), granted
