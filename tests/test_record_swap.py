"""A session record rewrite is swapped in (``renameat2(RENAME_EXCHANGE)``), not
renamed over the previous version (ext4 would flush it): the same atomic,
complete file for every reader, no temp file left, and the plain rename where
the swap cannot be done (``store/directory/atomic.py``)."""

from __future__ import annotations

import ctypes
import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_server_heartbeat.domain.errors import StoreError
from mcp_server_heartbeat.domain.models import SessionRecord
from mcp_server_heartbeat.store.directory import atomic
from mcp_server_heartbeat.store.directory.store import DirectoryStore

T = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def record(activity: str) -> SessionRecord:
    return SessionRecord(session_id="s1", host="h", pid=1, last_heartbeat=T, last_activity=activity)


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    found = DirectoryStore(tmp_path / "sessions")
    found.prepare()
    return found


def names(store: DirectoryStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir())


def test_a_rewrite_is_a_new_inode_and_an_open_reader_keeps_the_old_file(
    store: DirectoryStore,
) -> None:
    store.write_session(record("one"))
    path = store.directory / "s1.json"
    before = os.stat(path).st_ino
    with open(path, "rb") as reader:  # a reader in the middle of its read
        store.write_session(record("two"))
        assert b'"one"' in reader.read()  # the old version, whole
    assert os.stat(path).st_ino != before
    assert store.read_session("s1") == record("two")
    assert names(store) == [".gitignore", "claims", "s1.json"]  # the old one is unlinked


def _failing_renameat2(code: int) -> object:
    def call(*_args: object) -> int:
        ctypes.set_errno(code)
        return -1

    return call


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOSYS])
def test_without_the_swap_a_rewrite_is_a_plain_rename(
    store: DirectoryStore, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    store.write_session(record("one"))
    atomic._exchange(str(store.directory / ".a"), store.directory / ".b")  # looks renameat2 up
    monkeypatch.setattr(atomic, "_renameat2", _failing_renameat2(code))
    monkeypatch.setattr(atomic, "_exchange_usable", True)
    renamed: list[str] = []
    real_replace = os.replace

    def replace(src: str, dst: str | os.PathLike[str]) -> None:
        renamed.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    store.write_session(record("two"))
    assert renamed == ["s1.json"]
    assert store.read_session("s1") == record("two")
    assert names(store) == [".gitignore", "claims", "s1.json"]
    assert atomic._exchange_usable is False  # not tried again in this process


def test_a_record_gone_before_the_swap_is_written_and_synced_as_new(
    store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_session(record("one"))
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def vanish(target: Path) -> None:  # removed between the check and the swap
        os.unlink(target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setitem(atomic.FAILPOINTS, "rename", vanish)
    store.write_session(record("two"))
    assert store.read_session("s1") == record("two")
    assert len(synced) == 2 and synced[-1] == str(store.directory)  # the file, then the directory
    assert names(store) == [".gitignore", "claims", "s1.json"]


def test_a_directory_in_the_way_is_still_refused(store: DirectoryStore) -> None:
    os.mkdir(store.directory / "s1.json")
    with pytest.raises(StoreError, match=r"s1\.json"):
        store.write_session(record("one"))
    assert (store.directory / "s1.json").is_dir()
    assert names(store) == [".gitignore", "claims", "s1.json"]


def test_a_swap_refused_for_any_other_reason_falls_back_to_a_plain_rename(
    store: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap is only a saving: a file system that refuses it (a FUSE or
    network file system answering EPERM, say) gets the plain rename, so a
    heartbeat never fails (and its holder never goes stale) because of it."""
    store.write_session(record("one"))
    atomic._exchange(str(store.directory / ".a"), store.directory / ".b")
    monkeypatch.setattr(atomic, "_renameat2", _failing_renameat2(errno.EPERM))
    monkeypatch.setattr(atomic, "_exchange_usable", True)
    store.write_session(record("two"))
    assert store.read_session("s1") == record("two")
    assert names(store) == [".gitignore", "claims", "s1.json"]
