"""The directory lock without overhead: an uncontended acquire on the kept
descriptor costs one ``flock`` and one ``stat`` of the path (the check that a
deleted or replaced directory is never a second lock), nothing else; the
check still catches a directory replaced after the descriptor was opened."""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from pathlib import Path

import pytest

from mcp_server_heartbeat.store.directory import dirlock
from mcp_server_heartbeat.store.directory.dirlock import DirectoryGone, DirectoryLock


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    for module, name in ((fcntl, "flock"), (os, "stat"), (os, "fstat"), (os, "open")):
        real = getattr(module, name)

        def counted(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            seen[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return seen


def test_an_uncontended_acquire_is_one_flock_and_one_stat(
    tmp_path: Path, calls: Counter[str]
) -> None:
    lock = DirectoryLock(tmp_path)
    lock.acquire(1.0)
    lock.release()
    calls.clear()
    for _ in range(3):
        lock.acquire(1.0)
        lock.release()
    # per acquire: flock(LOCK_EX|LOCK_NB) + stat(path); per release: flock(LOCK_UN)
    assert calls == Counter({"flock": 6, "stat": 3})


def test_a_directory_replaced_after_opening_is_never_a_second_lock(tmp_path: Path) -> None:
    path = tmp_path / "sessions"
    path.mkdir()
    ours = DirectoryLock(path)
    ours.acquire(1.0)
    ours.release()  # the descriptor stays open on the first directory
    path.rename(tmp_path / "old")
    path.mkdir()
    other = DirectoryLock(path)
    other.acquire(1.0)  # another process holds the new directory
    try:
        with pytest.raises(dirlock.LockTimeout):
            ours.acquire(0.05)  # locking the old inode is not enough: re-checked
    finally:
        other.release()
    ours.acquire(1.0)
    assert ours.identity() == (os.stat(path).st_dev, os.stat(path).st_ino)
    ours.release()
    os.rmdir(path)
    with pytest.raises(DirectoryGone):
        ours.acquire(0.05)
