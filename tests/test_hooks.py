"""Claude Code hooks, run as the real console entry point with hook payloads on stdin.

The payloads in ``fixtures/hooks/`` have the shape Claude Code sends
(``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name``, and
``source`` or ``reason``); each test points ``cwd`` at a fixture project.
Processes that must be alive or dead are real processes; the hook's own
parent (this test process) plays Claude Code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcp_server_heartbeat.cli.hook_context import (
    COMPACT_REMINDER,
    PROTOCOL_REMINDER,
    RESUME_REMINDER,
)
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord
from mcp_server_heartbeat.host.identity import Identity, read_boot_id, read_pid_namespace
from mcp_server_heartbeat.host.probe import process_start_time
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore

FIXTURES = Path(__file__).parent / "fixtures" / "hooks"
SID = "4f6b8a0e-5c1d-4d1e-9a57-2d8f0c3b7e41"
CLEARED_SID = "9b2e7c11-0d4a-4c8e-b3f5-6a1d2e9f8c70"
HOST = socket.gethostname()
OTHER_LINE = (
    '- other-1: active, plan 043, branch feat/43-login, role executor, activity "pr-prepare:step3"'
)


def payload(name: str, root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    data["cwd"] = str(root)
    return data


def run_hook(event: str, data: dict[str, Any] | str, root: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE"))}
    env["CLAUDE_PROJECT_DIR"] = str(root)
    stdin = data if isinstance(data, str) else json.dumps(data)
    return subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "hook", event],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=20,
        check=False,
    )


def context_of(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n") and done.stdout.count("\n") == 1, done.stdout
    output = json.loads(done.stdout)
    assert list(output) == ["hookSpecificOutput"]
    assert output["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert list(output["hookSpecificOutput"]) == ["hookEventName", "additionalContext"]
    text: str = output["hookSpecificOutput"]["additionalContext"]
    return text


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Python/uv/FastAPI project on branch feat/90-review-loop with two plans."""
    root = (tmp_path / "shop").resolve()
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/feat/90-review-loop\n")
    (root / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://bot:ghp_secret@github.com/acme/shop.git\n'
    )
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\ndependencies = ["fastapi"]\n')
    (root / "uv.lock").write_text("")
    plans = root / ".ahrena" / "workflow" / "plans"
    plans.mkdir(parents=True)
    (plans / "090-review-loop.md").write_text("# Review loop\n")
    (plans / "043-login.md").write_text("# Login\n")
    return root


def sessions_dir(root: Path) -> Path:
    return root / ".ahrena" / "workflow" / "sessions"


def store_of(root: Path) -> DirectoryStore:
    store = DirectoryStore(sessions_dir(root))
    store.prepare()
    return store


@pytest.fixture
def spawn() -> Iterator[Any]:
    """Start real ``sleep`` processes; all are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"], stdin=subprocess.DEVNULL
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def now() -> datetime:
    return datetime.now(UTC)


def record(session_id: str, pid: int, client_pid: int, **fields: Any) -> SessionRecord:
    moment = now()
    return SessionRecord(
        session_id=session_id,
        entrypoint="cli",
        branch=fields.pop("branch", "main"),
        cwd="/home/dev/shop",
        started_at=moment,
        last_heartbeat=moment,
        last_call_at=moment,
        host=fields.pop("host", HOST),
        pid=pid,
        pid_started_at=process_start_time(pid),
        client_pid=client_pid,
        heartbeat_interval_s=30.0,
        boot_id=fields.pop("boot_id", read_boot_id()),
        pid_namespace=fields.pop("pid_namespace", read_pid_namespace()),
        **fields,
    )


def hold(store: DirectoryStore, rec: SessionRecord, plan_id: str, token: int) -> SessionRecord:
    """Write ``rec`` holding ``plan_id`` with ``token``, and the matching ledger."""
    held = rec.model_copy(
        update={"plan_id": plan_id, "fencing_token": token, "claimed_at": rec.started_at}
    )
    store.write_session(held)
    store.write_claim(
        ClaimRecord(
            plan_id=plan_id,
            fencing_token=token,
            holder=rec.session_id,
            holder_host=rec.host,
            holder_pid=rec.pid,
            holder_pid_started_at=rec.pid_started_at,
            claimed_at=rec.started_at,
            acquired_by="claim",
        )
    )
    return held


def dead_pid() -> tuple[int, datetime | None]:
    """A pid (and start time) of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start_time(process.pid)
    process.kill()
    process.wait()
    return process.pid, started


def with_others(root: Path, spawn: Any) -> None:
    """Another live session on plan 043, plus an ended one and a dead one (not shown)."""
    store = store_of(root)
    other = spawn()
    hold(
        store,
        record(
            "other-1",
            other.pid,
            other.pid,
            branch="feat/43-login",
            role="executor",
            last_activity="pr-prepare:step3",
        ),
        "043",
        2,
    )
    store.write_session(
        record("old-1", other.pid, other.pid).model_copy(update={"ended_at": now()})
    )
    pid, started = dead_pid()
    store.write_session(record("dead-1", pid, pid).model_copy(update={"pid_started_at": started}))


def expected_context(root: Path, *extra: str, header: str | None = None) -> str:
    lines = [
        header or f"Heartbeat: you are session {SID}.",
        "Project: Python (uv, FastAPI); git branch feat/90-review-loop, remote "
        f"https://github.com/acme/shop.git; root {root}.",
        "Active plan: none claimed.",
        "Suggested plan: 090 (.ahrena/workflow/plans/090-review-loop.md matches branch "
        'feat/90-review-loop by id+slug) — a hint, not claimed: call claim_plan(plan_id="090") '
        "if you take it up.",
        "Other sessions working here (1):",
        OTHER_LINE,
        PROTOCOL_REMINDER,
        *extra,
    ]
    return "\n".join(lines)


# -- session-start -------------------------------------------------------------------


def test_startup_records_the_session_and_tells_who_else_works(project: Path, spawn: Any) -> None:
    with_others(project, spawn)
    done = run_hook("session-start", payload("session_start_startup", project), project)
    assert context_of(done) == expected_context(project)
    assert done.stderr == ""
    own = DirectoryStore(sessions_dir(project)).read_session(SID)
    assert own is not None
    # Owned by the client (this test process plays Claude Code) until a server adopts it.
    assert (own.pid, own.client_pid, own.host) == (os.getpid(), os.getpid(), HOST)
    assert own.branch == "feat/90-review-loop" and own.plan_id is None and own.ended_at is None
    assert not (sessions_dir(project) / "claims" / "090.json").exists()  # never auto-claimed


def test_compact_reminds_to_reconfirm_what_it_waited_for(project: Path, spawn: Any) -> None:
    with_others(project, spawn)
    done = run_hook("session-start", payload("session_start_compact", project), project)
    assert context_of(done) == expected_context(project, COMPACT_REMINDER)


def test_resume_reopens_an_ended_record_and_keeps_its_start(project: Path, spawn: Any) -> None:
    with_others(project, spawn)
    store = store_of(project)
    earlier = record(SID, os.getpid(), os.getpid(), role="reviewer", last_activity="review:2")
    first_start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    store.write_session(
        earlier.model_copy(
            update={"started_at": first_start, "ended_at": now(), "end_reason": "other"}
        )
    )
    done = run_hook("session-start", payload("session_start_resume", project), project)
    assert context_of(done) == expected_context(project, RESUME_REMINDER)
    own = store.read_session(SID)
    assert own is not None
    assert (own.ended_at, own.end_reason, own.started_at) == (None, None, first_start)
    assert (own.role, own.last_activity, own.pid) == ("reviewer", "review:2", os.getpid())


def test_clear_points_at_the_server_that_keeps_the_original_id(project: Path, spawn: Any) -> None:
    """On /clear the MCP server keeps running as the old id: no new record, and
    the context names the server's session and its claim."""
    with_others(project, spawn)
    store = store_of(project)
    server = spawn()
    hold(store, record(SID, server.pid, os.getpid(), branch="feat/90-review-loop"), "090", 3)
    done = run_hook("session-start", payload("session_start_clear", project), project)
    lines = context_of(done).split("\n")
    assert lines[0] == (
        f"Heartbeat: Claude Code started conversation id {CLEARED_SID} on /clear; this "
        f"conversation's MCP heartbeat server still runs as session {SID}, so your claims and "
        "heartbeats are recorded under that id."
    )
    assert lines[2] == "Active plan: 090 (claimed by you, fencing token 3)."
    assert not any(line.startswith("Suggested plan") for line in lines)  # it is the active one
    assert lines[3:] == [
        "Other sessions working here (1):",
        OTHER_LINE,
        PROTOCOL_REMINDER,
    ]
    assert store.read_session(CLEARED_SID) is None


def test_clear_without_a_server_records_the_new_id_after_the_old(project: Path) -> None:
    store = store_of(project)
    store.write_session(
        record(SID, os.getpid(), os.getpid()).model_copy(
            update={"ended_at": now(), "end_reason": "clear"}
        )
    )
    done = run_hook("session-start", payload("session_start_clear", project), project)
    assert context_of(done).startswith(f"Heartbeat: you are session {CLEARED_SID}.\n")
    new = store.read_session(CLEARED_SID)
    assert new is not None and new.previous_session == SID


def test_a_server_record_is_left_to_the_server(project: Path, spawn: Any) -> None:
    store = store_of(project)
    server = spawn()
    mine = record(SID, server.pid, os.getpid())
    store.write_session(mine)
    before = (sessions_dir(project) / f"{SID}.json").read_bytes()
    done = run_hook("session-start", payload("session_start_startup", project), project)
    assert context_of(done).startswith(f"Heartbeat: you are session {SID}.\n")
    assert (sessions_dir(project) / f"{SID}.json").read_bytes() == before


def test_the_server_adopts_the_record_the_hook_wrote(project: Path) -> None:
    run_hook("session-start", payload("session_start_startup", project), project)
    store = DirectoryStore(sessions_dir(project))
    written = store.read_session(SID)
    assert written is not None
    identity = Identity(
        session_id=SID,
        session_id_source="env CLAUDE_CODE_SESSION_ID",
        entrypoint="cli",
        agent_version="claude-code/2",
        branch="feat/90-review-loop",
        cwd=str(project),
        host=HOST,
        pid=4242,
        pid_started_at=None,
        client_pid=os.getpid(),
    )
    SessionService(store, identity, Thresholds(), interval=30.0).start()
    adopted = store.read_session(SID)
    assert adopted is not None
    assert adopted.started_at == written.started_at and adopted.pid == 4242


def test_tracking_disabled_prints_nothing(project: Path) -> None:
    (project / ".ahrena" / ".directives").write_text("session_tracking:\n  enabled: false\n")
    done = run_hook("session-start", payload("session_start_startup", project), project)
    assert (done.returncode, done.stdout) == (0, "")
    assert not sessions_dir(project).exists()


# -- session-end ---------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["clear", "logout", "prompt_input_exit", "other"])
def test_end_closes_a_dead_servers_record_and_releases_its_claim(
    project: Path, reason: str
) -> None:
    store = store_of(project)
    pid, started = dead_pid()
    hold(store, record(SID, pid, 1).model_copy(update={"pid_started_at": started}), "043", 5)
    done = run_hook("session-end", payload(f"session_end_{reason}", project), project)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    ended = store.read_session(SID)
    assert ended is not None
    assert ended.end_reason == reason and ended.ended_at is not None
    assert (ended.plan_id, ended.fencing_token) == (None, None)
    ledger = store.read_claim("043")
    assert ledger is not None
    assert (ledger.holder, ledger.fencing_token) == (None, 5)
    assert ledger.release_reason == f"session ended: {reason}"


@pytest.mark.parametrize("reason", ["clear", "logout", "prompt_input_exit", "other"])
def test_end_leaves_a_live_server_alone(project: Path, spawn: Any, reason: str) -> None:
    """On /clear the server keeps running under this id; on exit it ends itself."""
    store = store_of(project)
    server = spawn()
    hold(store, record(SID, server.pid, os.getpid()), "043", 5)
    files = [sessions_dir(project) / f"{SID}.json", sessions_dir(project) / "claims" / "043.json"]
    before = [path.read_bytes() for path in files]
    done = run_hook("session-end", payload(f"session_end_{reason}", project), project)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert [path.read_bytes() for path in files] == before


def test_end_closes_the_record_the_start_hook_wrote(project: Path) -> None:
    """No MCP server ever adopted it: the record names the client, which is ending."""
    run_hook("session-start", payload("session_start_startup", project), project)
    done = run_hook("session-end", payload("session_end_logout", project), project)
    assert (done.returncode, done.stdout) == (0, "")
    ended = DirectoryStore(sessions_dir(project)).read_session(SID)
    assert ended is not None and ended.end_reason == "logout" and ended.ended_at is not None
    again = run_hook("session-end", payload("session_end_other", project), project)
    assert again.returncode == 0
    assert DirectoryStore(sessions_dir(project)).read_session(SID) == ended  # idempotent


def test_end_leaves_a_record_of_another_host_alone(project: Path) -> None:
    store = store_of(project)
    store.write_session(record(SID, 999_999, 1, host="elsewhere"))
    before = (sessions_dir(project) / f"{SID}.json").read_bytes()
    done = run_hook("session-end", payload("session_end_logout", project), project)
    assert (done.returncode, done.stdout) == (0, "")
    assert (sessions_dir(project) / f"{SID}.json").read_bytes() == before


def test_end_without_a_directory_creates_nothing(project: Path) -> None:
    done = run_hook("session-end", payload("session_end_other", project), project)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not sessions_dir(project).exists()


# -- never fail the user's session --------------------------------------------------


@pytest.mark.parametrize("event", ["session-start", "session-end"])
@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        ("not json", "not Claude Code's hook JSON"),
        ('{"cwd": "/"}', "session_id"),
        ('{"session_id": "../etc/passwd"}', "session_id '../etc/passwd' is not accepted"),
    ],
)
def test_bad_input_exits_0_with_a_line_on_stderr(
    project: Path, event: str, stdin: str, says: str
) -> None:
    store_of(project)
    done = run_hook(event, stdin, project)
    assert (done.returncode, done.stdout) == (0, "")
    assert says in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("event", ["session-start", "session-end"])
def test_a_locked_directory_does_not_hang_the_hook(project: Path, event: str) -> None:
    store = store_of(project)
    pid, started = dead_pid()
    store.write_session(record(SID, pid, 1).model_copy(update={"pid_started_at": started}))
    with store.lock():
        fixture = "session_start_startup" if event == "session-start" else "session_end_logout"
        done = run_hook(event, payload(fixture, project), project)
    assert (done.returncode, done.stdout) == (0, "")
    # The hook's own short lock wait, not the server's 5 s: it gives up, it does not hang.
    assert "stayed locked for 0.5 s" in done.stderr


def test_hooks_do_not_import_mcp(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE"))}
    probe = (
        "import sys\n"
        "from mcp_server_heartbeat.cli.main import main\n"
        "code = main(['hook', 'session-start'])\n"
        "loaded = sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.'))\n"
        "print('HOOKS' if 'mcp_server_heartbeat.cli.hooks' in sys.modules else 'NO-HOOKS',\n"
        "      'MCP:' + ','.join(loaded), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(payload("session_start_startup", project)),
        capture_output=True,
        text=True,
        env={**env, "CLAUDE_PROJECT_DIR": str(project)},
        timeout=20,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith('{"hookSpecificOutput"')
    assert done.stderr.strip() == "HOOKS MCP:"


# -- every change appends its event; BOM payloads ("Fault round two", 7 and 10) --------


def _lifecycle(root: Path, session_id: str) -> list[tuple[str, str | None]]:
    events = DirectoryStore(sessions_dir(root)).read_events()
    return [(e.event, e.reason) for e in events if e.session_id == session_id]


def test_records_the_start_hook_opens_write_their_events(project: Path) -> None:
    """start, end, resume, end: the log alternates, never two ends in a row."""
    for event, fixture in [
        ("session-start", "session_start_startup"),
        ("session-end", "session_end_logout"),
        ("session-start", "session_start_resume"),
        ("session-end", "session_end_other"),
    ]:
        done = run_hook(event, payload(fixture, project), project)
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert _lifecycle(project, SID) == [
        ("session_started", "session-start hook (startup)"),
        ("session_ended", "logout"),
        ("session_adopted", "session-start hook (resume)"),
        ("session_ended", "other"),
    ]
    started = DirectoryStore(sessions_dir(project)).read_events()[0]
    assert (started.host, started.pid) == (HOST, os.getpid())


def test_a_payload_with_a_utf8_byte_order_mark_is_accepted(project: Path) -> None:
    text = "\ufeff" + json.dumps(payload("session_start_startup", project))
    assert text.encode()[:3] == b"\xef\xbb\xbf"
    done = run_hook("session-start", text, project)
    assert "Heartbeat: you are session" in context_of(done)
    assert done.stderr == ""
    assert store_of(project).read_session(SID) is not None
    ended = run_hook(
        "session-end", "\ufeff" + json.dumps(payload("session_end_logout", project)), project
    )
    assert (ended.returncode, ended.stderr) == (0, "")
    record = store_of(project).read_session(SID)
    assert record is not None and record.end_reason == "logout"
