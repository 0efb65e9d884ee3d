"""Fault 6: the disk says no — ENOSPC, a read-only directory, a deleted directory.

Faults are injected at the OS call (``store.atomic.FAILPOINTS`` raises the
``OSError`` the kernel would) under a running in-memory server whose background
heartbeat beats every 50 ms; the read-only case also runs for real as user
``nobody`` (root ignores permission bits). Each time: the tool returns a clear
error, the previous record stays intact and readable, the background heartbeat
counts the failures (unhealthy after 3) and recovers when the fault is lifted.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from as_nobody import NOBODY, as_nobody
from mcp_server_heartbeat.domain.errors import StoreError
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.identity import detect_identity
from mcp_server_heartbeat.mcp import server as app_module
from mcp_server_heartbeat.runtime import Runtime
from mcp_server_heartbeat.session.heartbeat import HeartbeatMonitor
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory import atomic
from mcp_server_heartbeat.store.directory.store import DirectoryStore

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@dataclass
class Server:
    client: Client
    directory: Path
    service: SessionService
    monitor: HeartbeatMonitor

    @property
    def record_path(self) -> Path:
        return self.directory / f"{self.service.session_id}.json"

    async def call(self, tool: str, **args: Any) -> Any:
        return await self.client.call_tool(tool, args)

    async def health(self) -> dict[str, Any]:
        info = await self.call("session_info")
        health: dict[str, Any] = info.structured_content["heartbeat"]
        return health


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Server]:
    root = tmp_path / "project"
    root.mkdir()
    config = resolve_config(
        Flags(root=str(root), dir="hb", interval=0.05, stale_after=5.0),
        {},
        root,
        find_repo=lambda _: None,
    )
    store = DirectoryStore(config.dir_path, lock_timeout=1.0)
    store.prepare()
    service = SessionService(store, detect_identity("disk", {}, root), Thresholds(), 0.05)
    service.start()
    monitor = HeartbeatMonitor()
    runtime = Runtime(
        config=config, service=service, monitor=monitor, handle_signals=False, watch_parent=False
    )
    try:
        async with Client(app_module.build_app(runtime)) as client:
            yield Server(client, config.dir_path, service, monitor)
    finally:
        atomic.FAILPOINTS.clear()


async def until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    """Await ``condition()`` (sync or async) becoming true; fail after ``timeout`` s."""
    with anyio.fail_after(timeout):
        while True:
            value = condition()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return
            await anyio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover


def _raise(code: int) -> Callable[[Path], None]:
    def hook(target: Path) -> None:
        raise OSError(code, os.strerror(code), str(target))

    return hook


@pytest.mark.parametrize(
    ("step", "code", "words"),
    [
        ("write", errno.ENOSPC, "No space left on device"),
        ("open", errno.EROFS, "Read-only file system"),
        ("open", errno.EACCES, "Permission denied"),
        ("fsync", errno.EIO, "Input/output error"),
    ],
)
async def test_write_fault_gives_a_clear_error_keeps_the_record_and_recovers(
    tmp_path: Path, step: str, code: int, words: str
) -> None:
    async with running(tmp_path) as server:
        # Every write spends 0.1 s before its rename, so a background beat is
        # always in flight: one that passed the failpoint before it was armed
        # must not land after `before` was read (it did: flaky [open-13]).
        atomic.FAILPOINTS["rename"] = lambda _target: time.sleep(0.1)
        assert not (await server.call("heartbeat", activity="before")).is_error
        claimed = await server.call("claim_plan", plan_id="p1")
        token = claimed.structured_content["fencing_token"]
        # Under the store's lock no background beat (every 50 ms) is mid-write
        # between this snapshot and the failpoint.
        with server.service.store.lock():
            before = server.record_path.read_bytes()
            ledger_before = (server.directory / "claims" / "p1.json").read_bytes()
            atomic.FAILPOINTS[step] = _raise(code)
        failed = await server.call("heartbeat", activity="during")
        assert failed.is_error
        text = failed.content[0].text
        assert words in text and "previous version is unchanged" in text
        released = await server.call("release", plan_id="p1")
        assert released.is_error and words in released.content[0].text
        await until(lambda: server.monitor.consecutive_failures >= 3, "3 background failures")
        health = await server.health()
        assert health["healthy"] is False
        assert words in (health["last_error"] or "")
        # The previous record and ledger are intact, readable, and no temp file is left.
        assert server.record_path.read_bytes() == before
        assert json.loads(before)["last_activity"] == "before"
        assert (server.directory / "claims" / "p1.json").read_bytes() == ledger_before
        assert not [p for p in server.directory.rglob("*.tmp")]

        atomic.FAILPOINTS.clear()
        await until(lambda: server.monitor.consecutive_failures == 0, "recovery")
        assert (await server.health())["healthy"] is True
        assert (
            json.loads(server.record_path.read_bytes())["last_heartbeat"]
            != json.loads(before)["last_heartbeat"]
        )
        # The claim survived the fault; its token still works.
        done = await server.call("release", plan_id="p1", fencing_token=token)
        assert done.structured_content["outcome"] == "released"


async def test_deleted_directory_errors_is_not_recreated_behind_our_back_and_recovers(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as server:
        await server.call("claim_plan", plan_id="p1")
        with server.service.store.lock():  # no beat writes a file into it meanwhile
            shutil.rmtree(server.directory)

        failed = await server.call("heartbeat", activity="gone")
        assert failed.is_error
        assert "is gone" in failed.content[0].text
        await until(lambda: server.monitor.consecutive_failures >= 3, "3 background failures")
        assert (await server.health())["healthy"] is False
        # Found by this suite: filelock used to recreate the directory silently
        # (mode from the umask, no .gitignore, no claims/).
        assert not server.directory.exists()

        DirectoryStore(server.directory).prepare()  # what the next server start does
        await until(lambda: server.monitor.consecutive_failures == 0, "recovery")
        beat = (await server.call("heartbeat", activity="back")).structured_content
        assert beat["claim_lost"]["plan_id"] == "p1"  # the ledger went with the directory
        assert json.loads(server.record_path.read_text())["last_activity"] == "back"
        again = await server.call("claim_plan", plan_id="p1")
        assert again.structured_content["outcome"] == "claimed"
        assert (server.directory.stat().st_mode & 0o777) == 0o700


def test_claims_subdirectory_is_recreated_when_the_directory_was_recreated_by_hand(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "hb"
    store = DirectoryStore(directory)
    store.prepare()
    shutil.rmtree(directory)
    directory.mkdir()
    from mcp_server_heartbeat.domain.models import ClaimRecord

    store.write_claim(ClaimRecord(plan_id="p", fencing_token=1))
    assert (directory / "claims" / "p.json").is_file()
    assert (directory / "claims").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_really_read_only_directory_as_another_user() -> None:
    """For real: user ``nobody`` on a directory mode 0500 (root would ignore it)."""
    base = Path(tempfile.mkdtemp(prefix="hb-ro-"))
    try:
        os.chmod(base, 0o755)
        directory = base / "hb"
        DirectoryStore(directory).prepare()
        for path in [directory, *directory.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
        out = as_nobody(lambda: _read_only_scenario(directory))
        assert "Permission denied" in out["error"]
        assert out["record_intact"] is True
        assert out["recovered"] is True
    finally:
        shutil.rmtree(base)


def _read_only_scenario(directory: Path) -> dict[str, Any]:  # pragma: no cover - child
    service = SessionService(
        DirectoryStore(directory, lock_timeout=1.0),
        detect_identity("ro", {}, directory),
        Thresholds(),
        30.0,
    )
    service.start()
    before = (directory / "ro.json").read_bytes()
    os.chmod(directory, 0o500)
    try:
        service.heartbeat(activity="read-only")
        error = ""
    except StoreError as exc:
        error = str(exc)
    intact = (directory / "ro.json").read_bytes() == before
    os.chmod(directory, 0o700)
    service.heartbeat(activity="writable")
    recovered = json.loads((directory / "ro.json").read_text())["last_activity"] == "writable"
    return {"error": error, "record_intact": intact, "recovered": recovered}


def _fail_only(name: str, code: int = errno.ENOSPC) -> Callable[[Path], None]:
    def hook(target: Path) -> None:
        if target.name == name:
            raise OSError(code, os.strerror(code), str(target))

    return hook


@pytest.mark.parametrize("takeover", [False, True])
def test_claim_committed_in_the_ledger_is_never_stuck_when_a_record_write_fails(
    heartbeat_dir: Path, make_service: Any, probe: Any, takeover: bool
) -> None:
    """Found by this suite: when the ledger write succeeded but a session record
    write failed (ENOSPC), the claim was reported as an error while the ledger
    granted it — and, on a takeover, the claimant's memory never learned it, so
    the plan stayed held until the process died. The ledger is the commit
    point: the claim is granted and the record follows with the next beat."""
    store = DirectoryStore(heartbeat_dir)
    if takeover:
        old = make_service("old", pid=501)
        old.claim("p")
        probe.dead.add(501)
    me = make_service("me", pid=502)
    failing = "old.json" if takeover else "me.json"
    atomic.FAILPOINTS["rename"] = _fail_only(failing)
    try:
        result = me.claim("p")
    finally:
        atomic.FAILPOINTS.clear()
    ledger = store.read_claim("p")
    assert ledger is not None and ledger.holder == "me"
    assert result.claimed and result.fencing_token == ledger.fencing_token
    assert me.heartbeat().session.plan_id == "p"
    assert me.release("p").outcome == "released"
    ledger = store.read_claim("p")
    assert ledger is not None and ledger.holder is None


def test_release_committed_in_the_ledger_is_reported_released(
    heartbeat_dir: Path, make_service: Any
) -> None:
    store = DirectoryStore(heartbeat_dir)
    me = make_service("me", pid=502)
    token = me.claim("p").fencing_token
    atomic.FAILPOINTS["rename"] = _fail_only("me.json")
    try:
        result = me.release("p", fencing_token=token)
    finally:
        atomic.FAILPOINTS.clear()
    ledger = store.read_claim("p")
    assert ledger is not None and ledger.holder is None
    assert result.outcome == "released"
    assert me.heartbeat().session.plan_id is None
    assert json.loads((heartbeat_dir / "me.json").read_text())["plan_id"] is None
