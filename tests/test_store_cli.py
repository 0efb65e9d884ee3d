"""``store migrate`` and ``store import DIR``: exit 2 without a PostgreSQL store;
import raises every plan's fencing token to max(store, directory), frees plans
held in the directory, never lowers a token, and changes nothing the second time.
The target is a MemoryStore standing in for PostgreSQL (same Store protocol)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcp_server_heartbeat.cli import store_cmd
from mcp_server_heartbeat.cli.main import main
from mcp_server_heartbeat.domain.models import ClaimRecord, Event
from mcp_server_heartbeat.store import open_store
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from mcp_server_heartbeat.store.memory import MemoryStore
from stdio_client import run_console

SECRET = "s3cr3t-pw"
URL = f"postgresql://app:{SECRET}@db.example.com/shop"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_inherited_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HEARTBEAT_STORE", "HEARTBEAT_PROJECT", "HEARTBEAT_SCHEMA", "HEARTBEAT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)


def test_migrate_without_a_postgres_store_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    done = run_console(tmp_path, "store", "migrate")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "mcp-server-heartbeat store migrate: no PostgreSQL store is configured: give "
        "--store postgresql://..., set HEARTBEAT_STORE, or session_tracking.store in "
        ".ahrena/.directives (the heartbeat directory needs no migration)"
    ]


def test_import_without_a_postgres_store_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "import", str(tmp_path)]) == 2
    assert "no PostgreSQL store is configured" in capsys.readouterr().err


def test_a_bad_store_url_exits_2_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["store", "migrate", "--store", f"mysql://u:{SECRET}@h/d"]) == 2
    err = capsys.readouterr().err
    assert "is not accepted" in err and SECRET not in err


class Target(MemoryStore):
    """A MemoryStore with the PostgreSQL store's extra methods."""

    location = "postgresql://app@db.example.com/shop#acme"

    def migrate(self) -> int:
        return 4

    def close(self) -> None:
        pass


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Target:
    store = Target(clock=lambda: T0)
    real = open_store

    def opening(config: Any, *args: Any, url: str | None = None, **kwargs: Any) -> Any:
        if url is not None:  # the directory being imported
            return real(config, *args, url=url, **kwargs)
        assert config.store.value == URL  # the configured PostgreSQL store
        return store

    monkeypatch.setattr(store_cmd, "open_store", opening)
    return store


def test_migrate_prints_the_schema_version_without_the_password(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "migrate", "--store", URL]) == 0
    out = capsys.readouterr().out
    assert out == "postgresql://app@db.example.com/shop schema heartbeat: at version 4\n"


def ledger(plan: str, token: int, holder: str | None = None) -> ClaimRecord:
    return ClaimRecord(
        plan_id=plan,
        fencing_token=token,
        holder=holder,
        holder_host="laptop" if holder else None,
        holder_pid=4242 if holder else None,
        claimed_at=T0,
        acquired_by="claim",
    )


def heartbeat_dir(tmp_path: Path) -> Path:
    """A heartbeat directory: plan a free at 3, b held by s-old at 5, c at 2 (below
    the store's), d known only from its events (its ledger is unreadable) at 7."""
    where = tmp_path / "hb"
    store = DirectoryStore(where)
    store.prepare()
    for seeded in (ledger("a", 3), ledger("b", 5, holder="s-old"), ledger("c", 2)):
        with store.transaction() as tx:  # one ledger per transaction
            tx.write_claim(seeded)
    with store.transaction() as tx:
        tx.append_event(
            Event(at=T0, event="claim_granted", session_id="s1", plan_id="d", fencing_token=7)
        )
    (where / "claims" / "d.json").write_text("{torn")
    return where


def snapshot(store: MemoryStore) -> dict[str, dict[str, Any]]:
    return {claim.plan_id: claim.model_dump() for claim in store.iter_claims()}


def test_import_continues_tokens_upwards_frees_holders_and_is_idempotent(
    tmp_path: Path, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    source = heartbeat_dir(tmp_path)
    with target.transaction() as tx:
        tx.write_claim(ledger("c", 9))  # the store is ahead for c: never lowered
    assert main(["store", "import", str(source), "--store", URL]) == 0
    out = capsys.readouterr().out
    tokens = {plan: claim["fencing_token"] for plan, claim in snapshot(target).items()}
    assert tokens == {"a": 3, "b": 5, "c": 9, "d": 7}
    b = target.read_claim("b")
    assert b is not None and b.holder is None and b.holder_pid is None
    assert b.released_at == T0 and "held there by s-old" in (b.release_reason or "")
    assert "plan b: fencing token 0 -> 5, imported free (held in the directory by s-old" in out
    assert "plan c: unchanged (token 9 in the store, 2 in the directory)" in out
    assert "4 plan(s)" in out and "2 imported, 1 imported free, 1 unchanged, 0 conflict" in out
    assert SECRET not in out
    # Nothing in the directory changed (the ledger of b still names its holder).
    assert DirectoryStore(source).read_claim("b").holder == "s-old"  # type: ignore[union-attr]

    before = snapshot(target)
    assert main(["store", "import", str(source), "--store", URL]) == 0
    again = capsys.readouterr().out
    assert snapshot(target) == before  # running it twice changes nothing
    assert "0 imported, 0 imported free, 4 unchanged, 0 conflict" in again


def test_import_never_raises_a_token_under_a_live_holder_in_the_store(
    tmp_path: Path, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    source = heartbeat_dir(tmp_path)
    with target.transaction() as tx:
        tx.write_claim(ledger("a", 1, holder="s-team"))
    assert main(["store", "import", str(source), "--store", URL]) == 1
    out = capsys.readouterr().out
    claim = target.read_claim("a")
    assert claim is not None and (claim.fencing_token, claim.holder) == (1, "s-team")
    assert "plan a: NOT imported: held in the store by s-team with token 1" in out
    assert target.read_claim("b").fencing_token == 5  # type: ignore[union-attr]


def test_import_of_a_missing_directory_exits_2(
    tmp_path: Path, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "import", str(tmp_path / "nope"), "--store", URL]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert snapshot(target) == {}
