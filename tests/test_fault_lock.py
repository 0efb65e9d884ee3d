"""Fault round two, item 1: deleting ``.lock`` must not break mutual exclusion.

Older versions locked ``<dir>/.lock`` (filelock). Deleting that file — what a
person does after a "stayed locked" error — let the next process lock a new
inode while the old holder still held the old one: two holders, duplicate
fencing tokens (149 grants, 107 distinct tokens in the issue's run). The store
now locks the heartbeat directory itself, which cannot be removed from under
its holder while it has entries; ``.lock`` plays no part any more.

Real processes race through ``race_harness`` while a vandal process attacks
``<dir>/.lock`` every millisecond; the harness's independent checks (O_EXCL
marker, hold intervals on the monotonic clock, duplicate and decreasing
tokens, lost grants) must find nothing.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ServiceFactory
from mcp_server_heartbeat.domain.errors import StoreBusyError, StoreError
from mcp_server_heartbeat.store.directory.dirlock import DirectoryLock
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from race_harness import RaceConfig, run_race


@pytest.mark.slow
@pytest.mark.parametrize("vandal", ["unlink", "symlink", "dir"])
def test_attacking_dot_lock_never_yields_two_holders(tmp_path: Path, vandal: str) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("not yours\n")
    os.utime(target, (1_000_000_000, 1_000_000_000))
    config = RaceConfig(
        processes=6,
        rounds=60,
        plans=1,
        lockstep=False,
        seed=11,
        vandal=vandal,
        vandal_target=str(target),
    )
    report = run_race(tmp_path / "sessions", tmp_path / "work", config, timeout_s=180)

    assert report.violations == []
    assert report.attempts == 6 * 60
    assert report.grants > 6  # contention and success both happened
    assert report.final_tokens == {"plan-0": report.grants}  # one token per grant, none twice
    # The planted symlink's target was never followed or written.
    assert target.read_text() == "not yours\n"
    assert target.stat().st_mtime == 1_000_000_000


# -- the directory lock itself -------------------------------------------------------


def _hold_in_other_process(directory: Path) -> subprocess.Popen[str]:
    """A process holding the directory's lock until its stdin closes."""
    code = (
        "import sys; from pathlib import Path\n"
        "from mcp_server_heartbeat.store.directory.store import DirectoryStore\n"
        f"store = DirectoryStore(Path({str(directory)!r}))\n"
        "with store.lock():\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(10) == 0


def test_lock_is_on_the_directory_and_ignores_dot_lock(heartbeat_dir: Path) -> None:
    """Another process holds the lock: deleting or replacing ``.lock`` changes nothing."""
    holder = _hold_in_other_process(heartbeat_dir)
    try:
        store = DirectoryStore(heartbeat_dir)
        for attack in ("none", "file", "unlink", "dir"):
            lock = heartbeat_dir / ".lock"
            if attack == "file":
                lock.write_text("stale lock file of an older version\n")
            elif attack == "unlink":
                lock.unlink()
            elif attack == "dir":
                lock.mkdir()
            with pytest.raises(StoreBusyError, match=f"PID {holder.pid}"), store.lock(0.05):
                pass
    finally:
        _release(holder)
    with store.lock(timeout=5):
        pass
    assert (heartbeat_dir / ".lock").is_dir()  # never touched by the store


def test_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(heartbeat_dir: Path) -> None:
    store = DirectoryStore(heartbeat_dir)
    outcome: list[str] = []

    def other_thread() -> None:
        try:
            with store.lock(timeout=0.05):
                outcome.append("acquired")
        except StoreBusyError:
            outcome.append("busy")

    with store.lock(), store.lock():  # re-entrant
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert outcome == ["busy"]
    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert outcome == ["busy", "acquired"]


def test_a_forked_child_does_not_share_the_parents_lock(heartbeat_dir: Path) -> None:
    """The kept-open descriptor is reopened after fork: a child that inherited it
    would otherwise "acquire" the lock its parent holds."""
    store = DirectoryStore(heartbeat_dir)
    with store.lock():
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 3
            try:
                with store.lock(timeout=0.1):
                    code = 1
            except StoreBusyError:
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_forked_child_releasing_never_unlocks_its_parent(heartbeat_dir: Path) -> None:
    """The child shares the parent's open file description: a ``LOCK_UN`` there
    would drop the parent's lock while the parent still works under it."""
    lock = DirectoryLock(heartbeat_dir)
    lock.acquire(timeout=5)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                lock.release()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                "try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                "except BlockingIOError: sys.exit(7)",
                str(heartbeat_dir),
            ],
            check=False,
            timeout=30,
        )
        assert probe.returncode == 7  # still locked by the parent
    finally:
        lock.release()


def test_a_directory_recreated_while_unlocked_is_locked_afresh(
    tmp_path: Path, heartbeat_dir: Path
) -> None:
    """The store's descriptor still names the old directory: it must notice and
    lock the new one (where the other process holds the lock)."""
    store = DirectoryStore(heartbeat_dir)
    with store.lock():
        pass  # the descriptor is now open on the original directory
    heartbeat_dir.rename(tmp_path / "moved-away")
    DirectoryStore(heartbeat_dir).prepare()
    holder = _hold_in_other_process(heartbeat_dir)
    try:
        with pytest.raises(StoreBusyError, match=f"PID {holder.pid}"), store.lock(0.1):
            pass
    finally:
        _release(holder)
    with store.lock(timeout=5):
        identity = os.stat(heartbeat_dir)
        held = os.fstat(store._lock._fd)  # type: ignore[arg-type]
        assert (held.st_dev, held.st_ino) == (identity.st_dev, identity.st_ino)


def test_a_deleted_directory_is_refused_not_recreated(heartbeat_dir: Path) -> None:
    store = DirectoryStore(heartbeat_dir)
    with store.lock():
        pass
    shutil.rmtree(heartbeat_dir)
    with pytest.raises(StoreError, match="is gone"), store.lock(timeout=0.1):
        pass
    assert not heartbeat_dir.exists()


def test_a_dot_lock_symlink_to_a_file_outside_is_never_followed(
    tmp_path: Path, make_service: ServiceFactory, heartbeat_dir: Path
) -> None:
    """Item 5: with filelock, a planted ``.lock`` symlink was followed (older
    releases truncated or created its target) or refused every claim (ELOOP).
    The store no longer opens ``.lock`` at all: the target keeps its content and
    mtime, claims work and stay exclusive."""
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    os.utime(target, (1_000_000_000, 1_000_000_000))
    missing = tmp_path / "would-be-created.txt"
    (heartbeat_dir / ".lock").symlink_to(target)
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    assert a.claim("p").outcome == "claimed"
    assert b.claim("p").outcome == "held_by_other"
    assert a.release("p").outcome == "released"
    (heartbeat_dir / ".lock").unlink()
    (heartbeat_dir / ".lock").symlink_to(missing)
    assert b.claim("p").outcome == "claimed"
    assert b.claim("p").fencing_token == 2
    assert target.read_text() == "precious\n"
    assert target.stat().st_mtime == 1_000_000_000
    assert not missing.exists()


def test_a_store_that_is_dropped_closes_its_descriptor(heartbeat_dir: Path) -> None:
    """One descriptor is kept open per store; a store per CLI call or hook must not
    leak it."""

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for _ in range(50):
        store = DirectoryStore(heartbeat_dir)
        with store.lock(), store.lock():
            pass
        del store
    gc.collect()
    assert open_fds() <= before + 1
