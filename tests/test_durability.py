"""The durability policy (RELIABILITY.md, "Durability policy"), by the syncs made.

* A claim ledger is synced, file and ``claims/``, every time: it is the truth.
* A session record replacing its previous version is not synced (a power cut
  may cost its last rewrites, never a claim) and is swapped in
  (``renameat2(RENAME_EXCHANGE)``, no rename over a file: ext4 would flush
  it); a new record is synced, file and directory.
* An event line is synced with ``fdatasync``.
* The order at commit is unchanged: ledger (synced) before record before event.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_server_heartbeat.domain.models import ClaimRecord, Event, SessionRecord
from mcp_server_heartbeat.store.directory import atomic
from mcp_server_heartbeat.store.directory.store import DirectoryStore

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    found = DirectoryStore(tmp_path / "sessions")
    found.prepare()
    return found


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every fsync/fdatasync/replace/exchange, as ``(call, what)``: the target of a
    rename or swap, ``dir:<name>`` for a directory, ``file`` for a file."""
    seen: list[tuple[str, str]] = []
    real_fsync, real_fdatasync, real_replace = os.fsync, os.fdatasync, os.replace
    real_exchange = atomic._exchange

    def what(fd: int) -> str:
        path = os.readlink(f"/proc/self/fd/{fd}")
        return f"dir:{Path(path).name}" if os.path.isdir(path) else f"file:{Path(path).name}"

    def fsync(fd: int) -> None:
        seen.append(("fsync", what(fd)))
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        seen.append(("fdatasync", what(fd)))
        real_fdatasync(fd)

    def replace(src: str, dst: str | os.PathLike[str]) -> None:
        seen.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)

    def exchange(tmp_path: str, target: Path) -> bool:
        done = real_exchange(tmp_path, target)
        if done:
            seen.append(("exchange", Path(target).name))
        return done

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(atomic, "_exchange", exchange)
    yield seen


def record(beat: int) -> SessionRecord:
    return SessionRecord(
        session_id="s1", host="h", pid=1, last_heartbeat=T, last_activity=str(beat)
    )


def test_a_new_record_is_synced_a_rewrite_is_not(
    store: DirectoryStore, syncs: list[tuple[str, str]]
) -> None:
    store.write_session(record(1))
    assert [c for c, _ in syncs] == ["fsync", "replace", "fsync"]
    assert syncs[2] == ("fsync", "dir:sessions")
    syncs.clear()
    store.write_session(record(2))
    assert syncs == [("exchange", "s1.json")]
    assert store.read_session("s1") == record(2)
    assert sorted(p.name for p in store.directory.iterdir()) == [".gitignore", "claims", "s1.json"]


def test_a_ledger_is_synced_file_and_directory_every_time(
    store: DirectoryStore, syncs: list[tuple[str, str]]
) -> None:
    for token in (1, 2):
        syncs.clear()
        store.write_claim(ClaimRecord(plan_id="p1", fencing_token=token, holder="s1"))
        assert [c for c, _ in syncs] == ["fsync", "replace", "fsync"]
        assert syncs[1:] == [("replace", "p1.json"), ("fsync", "dir:claims")]


def test_an_event_is_synced_with_fdatasync(
    store: DirectoryStore, syncs: list[tuple[str, str]]
) -> None:
    store.append_event(Event(at=T, event="session_started", session_id="s1"))
    assert syncs == [("fdatasync", "file:events.jsonl")]


def test_a_claim_commits_ledger_synced_then_record_then_event(
    store: DirectoryStore, syncs: list[tuple[str, str]]
) -> None:
    store.write_session(record(1))
    syncs.clear()
    with store.transaction() as tx:
        tx.append_event(Event(at=T, event="claim_granted", session_id="s1", plan_id="p1"))
        tx.write_session(record(2).model_copy(update={"plan_id": "p1", "fencing_token": 1}))
        tx.write_claim(ClaimRecord(plan_id="p1", fencing_token=1, holder="s1"))
    assert syncs[0][0] == "fsync" and syncs[0][1].startswith("file:.p1.json.")  # its temp file
    assert syncs[1:] == [
        ("replace", "p1.json"),
        ("fsync", "dir:claims"),
        ("exchange", "s1.json"),
        ("fdatasync", "file:events.jsonl"),
    ]
