"""Fault 4: hostile directory content, read by a real server over stdio.

Truncated JSON, an empty file, binary garbage, a 10 MB file, JSON of the wrong
shape, wrong types, JSON nested too deeply for the parser, an integer too long
to convert, a date out of range, a directory named ``x.json``, a symlink named
like a session pointing outside, a FIFO, and (as a non-root user, arranged with
a setuid subprocess) a file owned by another user. ``list_sessions`` must list
every good session, name each bad file with a reason, follow/modify/delete
nothing, and stay responsive (a FIFO must not block it).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from as_nobody import NOBODY, as_nobody
from mcp_server_heartbeat.domain.models import SessionRecord
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from stdio_client import StdioServer

pytestmark = pytest.mark.slow

# file name -> (content or kind, words the reason must contain)
HOSTILE: dict[str, tuple[object, str]] = {
    "trunc.json": (b'{"session_id": "trunc", "pid', "not valid JSON"),
    "empty.json": (b"", "empty file"),
    "binary.json": ("binary", "not valid JSON"),
    "huge.json": ("huge", "too large"),
    "shape.json": (b"[1, 2, 3]", "not a JSON object"),
    "types.json": (b'{"session_id": "types", "pid": "not-a-number"}', "pid"),
    "deep.json": (b"[" * 200_000, "nested too deeply"),
    "bigint.json": (b'{"session_id": "bigint", "pid": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "baddate.json": (
        b'{"session_id": "baddate", "last_heartbeat": "0001-01-01T00:00:00+14:00"}',
        "not a valid SessionRecord",
    ),
    "mismatch.json": (b'{"session_id": "someone-else"}', "does not match the file name"),
    "x.json": ("directory", "a directory"),
    "link.json": ("symlink", "symbolic link"),
    "fifo.json": ("fifo", "FIFO"),
}


def _snapshot(directory: Path, skip: set[str]) -> dict[str, tuple[int, int, int, int, int]]:
    """lstat of every entry under ``directory`` (mode, size, inode, mtime, ctime)."""
    state = {}
    for path in sorted(directory.rglob("*")):
        rel = str(path.relative_to(directory))
        if rel in skip or path.name.endswith(".tmp") or rel.startswith("events"):
            continue
        info = path.lstat()
        state[rel] = (info.st_mode, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)
    return state


def _plant(directory: Path, outside: Path) -> None:
    for name, (content, _) in HOSTILE.items():
        path = directory / name
        if content == "binary":
            path.write_bytes(random.Random(4).randbytes(4096))
        elif content == "huge":
            with path.open("wb") as out:
                out.write(b'{"session_id": "huge", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}')
        elif content == "directory":
            path.mkdir()
        elif content == "symlink":
            os.symlink(outside / "secret.json", path)
        elif content == "fifo":
            os.mkfifo(path)
        else:
            assert isinstance(content, bytes)
            path.write_bytes(content)


def _good(store: DirectoryStore, session_id: str) -> None:
    now = datetime.now(UTC)
    store.write_session(
        SessionRecord(
            session_id=session_id,
            host="another-host",
            pid=4242,
            started_at=now,
            last_heartbeat=now,
            last_call_at=now,
        )
    )


def test_hostile_files_are_reported_never_followed_or_touched(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({"session_id": "link", "secret": "s3cret"}))
    directory = root / "hb"
    store = DirectoryStore(directory)
    store.prepare()
    _good(store, "good-1")
    _good(store, "good-2")
    _plant(directory, outside)
    (store.claims_dir / "junk.json").write_bytes(b"\x00\x01 not a ledger")
    before = _snapshot(directory, skip={"observer.json", ".lock"})
    outside_before = _snapshot(outside, skip=set())

    server = StdioServer(root, "--dir", str(directory), "--session-id", "observer")
    try:
        server.initialize()
        for _ in range(3):  # repeated: the FIFO or the 10 MB file must never block it
            result = server.call("list_sessions")
            assert result.get("isError") is not True, result
            listed = result["structuredContent"]
            ids = {s["session_id"] for s in listed["sessions"]}
            assert ids == {"good-1", "good-2", "observer"}
            reasons = {u["file"]: u["reason"] for u in listed["unreadable"]}
            assert set(reasons) == set(HOSTILE)
            for name, (_, words) in HOSTILE.items():
                assert words in reasons[name], (name, reasons[name])
        # A junk claim ledger refuses the claim with a clear error and nothing else.
        junk = server.call("claim_plan", plan_id="junk")
        assert junk["isError"] is True
        assert "unreadable" in junk["content"][0]["text"]
        # Still serving normally.
        ok = server.call("claim_plan", plan_id="fine")["structuredContent"]
        assert ok["outcome"] == "claimed"
        assert server.call("heartbeat", activity="after-hostile")["structuredContent"]
        assert server.proc.poll() is None
        server.close_stdin()
        assert server.wait() == 0
        assert "Traceback" not in server.stderr()
    finally:
        server.stop()

    # Only the server's own record, the lock and the new ledger changed (and claims/
    # itself, which gained that ledger).
    changed = {"observer.json", ".lock", "claims", "claims/fine.json"}
    assert _snapshot(directory, skip=changed) == {
        k: v for k, v in before.items() if k not in changed
    }
    assert _snapshot(outside, skip=set()) == outside_before


def test_own_record_as_a_symlink_is_replaced_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "victim.txt"
    target.write_text("do not touch\n")
    directory = root / "hb"
    DirectoryStore(directory).prepare()
    os.symlink(target, directory / "mine.json")

    server = StdioServer(root, "--dir", str(directory), "--session-id", "mine")
    try:
        server.initialize()
        assert server.call("heartbeat", activity="x")["structuredContent"]
    finally:
        server.close_stdin()
        server.wait()
        server.stop()
    assert target.read_text() == "do not touch\n"
    assert not (directory / "mine.json").is_symlink()
    assert json.loads((directory / "mine.json").read_text())["session_id"] == "mine"


def test_claims_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    """Found by this suite: ``claims/`` as a symlink made ledgers land outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    directory = tmp_path / "hb"
    directory.mkdir(mode=0o700)
    os.symlink(outside, directory / "claims")
    with pytest.raises(Exception, match="symbolic link"):
        DirectoryStore(directory).prepare()
    store = DirectoryStore(directory)
    from mcp_server_heartbeat.domain.errors import StoreError
    from mcp_server_heartbeat.domain.models import ClaimRecord

    with pytest.raises(StoreError, match="symbolic link"):
        store.write_claim(ClaimRecord(plan_id="p", fencing_token=1))
    with pytest.raises(StoreError, match="symbolic link"):
        store.read_claim("p")
    assert list(outside.iterdir()) == []


def _listing(directory: Path) -> dict[str, object]:
    records, unreadable = DirectoryStore(directory).list_sessions()
    return {
        "ids": [r.session_id for r in records],
        "unreadable": {u.file: u.reason for u in unreadable},
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to arrange another user's file")
def test_file_of_another_user_is_unreadable_not_fatal() -> None:
    """As user ``nobody`` (a forked child that drops root with setuid): a 0600
    file owned by root is reported unreadable with the OS reason; the good
    sessions are listed."""
    base = Path(tempfile.mkdtemp(prefix="hb-foreign-"))
    try:
        os.chmod(base, 0o755)
        directory = base / "hb"
        store = DirectoryStore(directory)
        store.prepare()
        _good(store, "good-1")
        foreign = directory / "foreign.json"
        foreign.write_text(json.dumps({"session_id": "foreign"}))
        os.chmod(foreign, 0o600)
        for path in [directory, *directory.rglob("*")]:
            if path != foreign:
                os.lchown(path, NOBODY, NOBODY)
        seen = as_nobody(lambda: _listing(directory))
        assert seen["ids"] == ["good-1"]
        assert "Permission denied" in seen["unreadable"]["foreign.json"]
        assert json.loads(foreign.read_text()) == {"session_id": "foreign"}
    finally:
        shutil.rmtree(base)


def test_fifo_planted_as_the_event_log_does_not_block_the_server(tmp_path: Path) -> None:
    """Found by this suite: ``events.jsonl`` was opened for writing without
    O_NONBLOCK, so a FIFO there hung the server at start, holding the lock."""
    root = tmp_path / "project"
    root.mkdir()
    directory = root / "hb"
    DirectoryStore(directory).prepare()
    os.mkfifo(directory / "events.jsonl")
    server = StdioServer(root, "--dir", str(directory), "--session-id", "fifo-victim")
    try:
        server.initialize()  # TimeoutError here if start-up blocked
        claimed = server.call("claim_plan", plan_id="p")["structuredContent"]
        assert claimed["outcome"] == "claimed"
        assert server.call("release", plan_id="p")["structuredContent"]["released"]
        server.close_stdin()
        assert server.wait() == 0
        assert "no event was logged" in server.stderr() or "No such device" in server.stderr()
    finally:
        server.stop()
    assert (directory / "events.jsonl").is_fifo()
