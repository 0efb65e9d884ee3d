"""Fault round two, item 3: one poisoned line in ``events.jsonl``.

A line with a 5,000-digit ``fencing_token`` (past Python's 4,300-digit limit:
``ValueError``) or 3,000 nested brackets (``RecursionError``) made ``history``,
``gc`` and ``heartbeat://plans/{id}`` fail with a traceback, and ``gc`` failed
after it had already removed records. Every unparseable line is now skipped
and counted like a torn line, and ``gc`` prunes the log before it removes
anything else, so it completes or changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from conftest import FakeClock, ServiceFactory
from mcp_server_heartbeat.domain.errors import StoreError
from mcp_server_heartbeat.domain.liveness import Observer, Thresholds
from mcp_server_heartbeat.session.observe import collect_garbage
from mcp_server_heartbeat.store.directory.events import EVENTS_NAME, EventLog
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from test_resources import app_for, read_json

HEAD = b'{"at": "2026-11-20T12:00:05Z", "event": "claim_released", "session_id": "x", '
POISON: dict[str, bytes] = {
    "5000-digit token": HEAD + b'"plan_id": "043", "fencing_token": ' + b"9" * 5000 + b"}",
    "3000 nested brackets": b"[" * 3000 + b"]" * 3000,
    "3000 nested in a field": HEAD
    + b'"plan_id": "043", "extra": '
    + b"[" * 3000
    + b"]" * 3000
    + b"}",
    "infinite token": HEAD + b'"plan_id": "043", "fencing_token": 1e999}',
    "not utf-8": HEAD + b'"plan_id": "\xff\xfe"}',
    "torn": HEAD[:30],
}


def _poison(directory: Path, lines: list[bytes]) -> None:
    with (directory / EVENTS_NAME).open("ab") as log:
        for line in lines:
            log.write(line + b"\n")


@pytest.mark.parametrize("name", sorted(POISON))
def test_each_poisoned_line_is_skipped_and_counted(heartbeat_dir: Path, name: str) -> None:
    log = EventLog(heartbeat_dir)
    _poison(
        heartbeat_dir,
        [
            b'{"at": "2026-11-20T12:00:00Z", "event": "claim_granted", '
            b'"session_id": "x", "plan_id": "043", "fencing_token": 1}',
            POISON[name],
        ],
    )
    events, skipped = log.read()
    assert [e.event for e in events] == ["claim_granted"]
    assert skipped == 1


@pytest.fixture
def poisoned(make_service: ServiceFactory, heartbeat_dir: Path, clock: FakeClock) -> Path:
    """043 claimed and released by ``a`` (ended), ``b`` still holds 044; then every
    poisoned line appended to the log. Everything happened on 2026-11-20."""
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    b.claim("044")
    clock.advance(5)
    a.release("043")
    a.end("done")
    _poison(heartbeat_dir, list(POISON.values()))
    return heartbeat_dir


def _cli(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", *args, "--dir", str(directory)],
        cwd=directory.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_history_skips_and_reports_poisoned_lines(poisoned: Path) -> None:
    done = _cli(poisoned, "history", "043")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "claim_granted" in done.stdout
    assert "claim_released" in done.stdout
    assert f"{len(POISON)} unreadable lines of the event log skipped" in done.stdout
    as_json = json.loads(_cli(poisoned, "history", "043", "--json").stdout)
    assert as_json["skipped_lines"] == len(POISON)
    assert [e["event"] for e in as_json["events"]] == ["claim_granted", "claim_released"]


def test_gc_completes_and_prunes_the_poisoned_lines(poisoned: Path) -> None:
    """Run a day later (the real clock): a's record and every event are old."""
    done = _cli(poisoned, "gc", "--older-than", "1h")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "removed 1 session record" in done.stdout
    assert not (poisoned / "a.json").exists()
    assert (poisoned / "b.json").exists()  # holds 044: kept
    assert EventLog(poisoned).read() == ([], 0)  # old events and the poison are gone
    assert _cli(poisoned, "history", "043").returncode == 0


def test_gc_that_cannot_prune_the_log_removes_nothing(
    poisoned: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryStore(poisoned)
    before = sorted(p.name for p in poisoned.iterdir())

    def disk_full(*_args: object, **_kwargs: object) -> int:
        raise StoreError("no space left on device")

    monkeypatch.setattr(store, "prune_events", disk_full)
    clock.advance(86400)
    with pytest.raises(StoreError):
        collect_garbage(
            store,
            clock(),
            3600.0,
            Observer(session_id="gc", host="h", client_pid=1),
            lambda pid, started, ticks=None: None,  # never consulted: pruning fails first
            Thresholds(),
        )
    assert sorted(p.name for p in poisoned.iterdir()) == before


@pytest.mark.anyio
async def test_plan_resource_skips_poisoned_lines(
    make_service: ServiceFactory, poisoned: Path, tmp_path: Path
) -> None:
    me = make_service("me", pid=103)
    async with Client(app_for(me, tmp_path)) as client:  # type: ignore[arg-type]
        plan = await read_json(client, "heartbeat://plans/043")
    assert isinstance(plan, dict)
    assert [e["event"] for e in plan["events"]] == ["claim_granted", "claim_released"]
