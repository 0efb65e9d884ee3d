"""A transaction reads each record and ledger from the store once
(``store/buffered.py``): the committed state cannot change while it is open."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server_heartbeat.domain.errors import StoreError
from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord
from mcp_server_heartbeat.store.directory.store import DirectoryStore


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    found = DirectoryStore(tmp_path / "sessions")
    found.prepare()
    with found.transaction() as tx:
        tx.write_session(SessionRecord(session_id="s1", host="h", pid=1))
        tx.write_claim(ClaimRecord(plan_id="p1", fencing_token=1, holder="s1"))
    return found


def counting(store: DirectoryStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real_claim, real_session = store.read_claim, store.read_session

    def read_claim(plan_id: str) -> ClaimRecord | None:
        reads.append(f"claim:{plan_id}")
        return real_claim(plan_id)

    def read_session(session_id: str) -> SessionRecord | None:
        reads.append(f"session:{session_id}")
        return real_session(session_id)

    monkeypatch.setattr(store, "read_claim", read_claim)
    monkeypatch.setattr(store, "read_session", read_session)
    return reads


def test_a_claim_release_reads_each_file_once(
    store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = counting(store, monkeypatch)
    with store.transaction() as tx:
        ledger = tx.read_claim("p1")
        assert ledger is not None and tx.read_claim("p1") == ledger
        assert tx.read_session("s1") == tx.read_session("s1")
        assert tx.read_claim("p2") is None and tx.read_claim("p2") is None
        assert tx.read_session("gone") is None and tx.read_session("gone") is None
        tx.write_claim(ledger.model_copy(update={"holder": None}))  # checks the token: no read
        assert tx.read_claim("p1") is not None and tx.read_claim("p1").holder is None
    assert reads == ["claim:p1", "session:s1", "claim:p2", "session:gone"]
    with store.transaction() as tx:  # a new transaction reads afresh
        assert tx.read_claim("p1").holder is None
    assert reads[-1] == "claim:p1"


def test_an_unreadable_ledger_is_refused_at_every_read(store: DirectoryStore) -> None:
    (store.claims_dir / "p9.json").write_text("{not json")
    with store.transaction() as tx:
        for _ in range(2):
            with pytest.raises(StoreError, match="unreadable"):
                tx.read_claim("p9")
