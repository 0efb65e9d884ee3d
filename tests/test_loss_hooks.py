"""Loss pushed into the conversation, and subagents that know the claim: the
``post-tool-use``, ``user-prompt-submit`` and ``subagent-start`` hooks, run as
the real console entry point with Claude Code's hook JSON on stdin.

The store's state is made by real sessions (:class:`SessionService` with an
injected clock and process probe: a session goes stale by moving the clock,
not by waiting); the hooks are real processes reading it, with the directory
store and with PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST, FakeClock, FakeProbe, make_identity
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from pg_support import make_store, test_dsn

A = "a1b2c3d4-0000-4000-8000-00000000000a"
B = "9d81e4b2-1111-4111-8111-11111111111b"
C = "c0c0c0c0-2222-4222-8222-22222222222c"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = (tmp_path / "shop").resolve()
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/feat/43-login\n")
    return project


def sessions_dir(root: Path) -> Path:
    return root / ".ahrena" / "workflow" / "sessions"


World = Callable[[str, int], SessionService]


def world(store: Any, clock: FakeClock, probe: FakeProbe) -> World:
    def make(session_id: str, pid: int) -> SessionService:
        service = SessionService(
            store,
            make_identity(session_id, pid, HOST),
            Thresholds(stale_after=300.0, idle_after=600.0),
            interval=30.0,
            clock=clock,
            probe=probe,
        )
        service.start()
        return service

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def directory_world(root: Path, clock: FakeClock) -> World:
    store = DirectoryStore(sessions_dir(root), clock=clock)
    store.prepare()
    return world(store, clock, FakeProbe())


@pytest.fixture
def pg(clock: FakeClock) -> Iterator[tuple[Any, dict[str, str]]]:
    cleanups: list[Callable[[], None]] = []
    store = make_store(cleanups, project="loss-hooks", clock=clock)
    env = {
        "HEARTBEAT_STORE": test_dsn(),
        "HEARTBEAT_PROJECT": "loss-hooks",
        "HEARTBEAT_SCHEMA": store.schema,
    }
    yield store, env
    for cleanup in cleanups:
        cleanup()


def hook_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE"))}
    env["CLAUDE_PROJECT_DIR"] = str(root)
    env.update(extra or {})
    return env


def start_hook(
    event: str, session_id: str, root: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server_heartbeat", "hook", event],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hook_env(root, env),
        cwd=root,
    )
    assert process.stdin is not None
    name = "".join(part.capitalize() for part in event.split("-"))
    process.stdin.write(
        json.dumps(
            {
                "session_id": session_id,
                "transcript_path": "/tmp/t.jsonl",
                "cwd": str(root),
                "hook_event_name": name,
                "tool_name": "Bash",
                "agent_id": "agent-1",
                "agent_type": "general-purpose",
            }
        )
    )
    process.stdin.close()
    process.stdin = None  # written whole; communicate() only reads
    return process


def run_hook(
    event: str, session_id: str, root: Path, env: dict[str, str] | None = None
) -> tuple[str, str]:
    process = start_hook(event, session_id, root, env)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    return out, err


def context_of(out: str, event_name: str) -> str:
    assert out.endswith("\n") and out.count("\n") == 1, out
    output = json.loads(out)
    assert list(output) == ["hookSpecificOutput"]
    assert output["hookSpecificOutput"]["hookEventName"] == event_name
    assert list(output["hookSpecificOutput"]) == ["hookEventName", "additionalContext"]
    text: str = output["hookSpecificOutput"]["additionalContext"]
    return text


def forced_takeover(make: World, clock: FakeClock) -> tuple[SessionService, SessionService]:
    """A claims 043 (token 1) and goes quiet for 6 min; B forces it (token 2)."""
    a = make(A, 101)
    assert a.claim("043").fencing_token == 1
    clock.advance(360)
    b = make(B, 102)
    taken = b.claim("043", force=True)
    assert (taken.outcome, taken.fencing_token) == ("taken_over", 2)
    return a, b


def expected_notice(clock: FakeClock) -> str:
    return (
        f"Your claim on plan 043 (token 1) was taken over at 2026-11-20 "
        f"{clock.now:%H:%M} UTC by session 9d81e4b2 (forced: your session had been stale "
        "for 6 min). Stop work on 043 and check with that session before you continue."
    )


# -- directory store -------------------------------------------------------------------


def test_the_loss_is_told_once_then_nothing(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    forced_takeover(directory_world, clock)
    out, err = run_hook("post-tool-use", A, root)
    assert err == ""
    assert context_of(out, "PostToolUse") == expected_notice(clock)
    assert run_hook("post-tool-use", A, root) == ("", "")
    assert run_hook("user-prompt-submit", A, root) == ("", "")
    events = [
        json.loads(line)
        for line in (sessions_dir(root) / "events.jsonl").read_text().splitlines()
        if '"loss_notified"' in line
    ]
    assert [(e["session_id"], e["plan_id"], e["fencing_token"], e["taken_by"]) for e in events] == [
        (A, "043", 1, B)
    ]


def test_user_prompt_submit_tells_it_when_it_comes_first(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    forced_takeover(directory_world, clock)
    out, _ = run_hook("user-prompt-submit", A, root)
    assert context_of(out, "UserPromptSubmit") == expected_notice(clock)
    assert run_hook("post-tool-use", A, root) == ("", "")


def test_nothing_when_nothing_was_lost(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    assert run_hook("post-tool-use", C, root) == ("", "")  # no store at all yet
    c = directory_world(C, 103)
    c.claim("044")
    assert run_hook("post-tool-use", C, root) == ("", "")
    assert run_hook("user-prompt-submit", C, root) == ("", "")
    c.release()
    assert run_hook("post-tool-use", C, root) == ("", "")  # a release is no loss
    forced_takeover(directory_world, clock)
    assert run_hook("post-tool-use", B, root) == ("", "")  # the winner lost nothing
    assert run_hook("post-tool-use", C, root) == ("", "")  # a bystander neither


def test_told_after_the_servers_own_heartbeat_cleared_the_plan(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    a, _ = forced_takeover(directory_world, clock)
    assert a.heartbeat().claim_lost is not None  # the server noticed: plan_id cleared
    record = json.loads((sessions_dir(root) / f"{A}.json").read_text())
    assert record["plan_id"] is None and record["claim_lost"]["plan_id"] == "043"
    out, _ = run_hook("post-tool-use", A, root)
    assert context_of(out, "PostToolUse") == expected_notice(clock)
    assert run_hook("post-tool-use", A, root) == ("", "")


def test_told_from_the_ledger_when_the_record_still_shows_the_plan(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    forced_takeover(directory_world, clock)
    path = sessions_dir(root) / f"{A}.json"
    record = json.loads(path.read_text())
    record.update(plan_id="043", fencing_token=1, claim_lost=None)  # the rewrite never came
    path.write_text(json.dumps(record))
    out, _ = run_hook("post-tool-use", A, root)
    assert context_of(out, "PostToolUse") == expected_notice(clock)
    assert run_hook("post-tool-use", A, root) == ("", "")


def test_concurrent_hooks_tell_it_exactly_once(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    forced_takeover(directory_world, clock)
    processes = [start_hook("post-tool-use", A, root) for _ in range(4)]
    outputs = [process.communicate(timeout=30) for process in processes]
    assert all(process.returncode == 0 for process in processes)
    told = [out for out, _ in outputs if out]
    assert len(told) == 1, outputs
    assert context_of(told[0], "PostToolUse") == expected_notice(clock)


def test_the_loss_hooks_load_neither_mcp_nor_pydantic_when_nothing_was_lost(
    root: Path, directory_world: World
) -> None:
    directory_world(A, 101).claim("043")
    probe = (
        "import sys\n"
        "from mcp_server_heartbeat.cli.main import main\n"
        "code = main(['hook', sys.argv[1]])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'pydantic'))\n"
        "print('HEAVY:' + ','.join(heavy), file=sys.stderr)\n"
    )
    for event in ("post-tool-use", "user-prompt-submit", "subagent-start"):
        done = subprocess.run(
            [sys.executable, "-c", probe, event],
            input=json.dumps({"session_id": A, "cwd": str(root)}),
            capture_output=True,
            text=True,
            env=hook_env(root),
            timeout=30,
            check=False,
        )
        assert done.returncode == 0
        assert done.stderr.strip() == "HEAVY:", (event, done.stderr)


def test_bad_input_exits_0_with_a_line_on_stderr(root: Path) -> None:
    for stdin in ("", "[]", '{"session_id": "../x"}', "{"):
        done = subprocess.run(
            [sys.executable, "-m", "mcp_server_heartbeat", "hook", "post-tool-use"],
            input=stdin,
            capture_output=True,
            text=True,
            env=hook_env(root),
            timeout=30,
            check=False,
        )
        assert done.returncode == 0 and done.stdout == ""
        assert done.stderr.startswith("mcp-server-heartbeat hook post-tool-use: "), done.stderr
        assert done.stderr.count("\n") == 1


# -- subagent-start --------------------------------------------------------------------


def test_subagent_start_gives_plan_token_branch_and_rules(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    forced_takeover(directory_world, clock)
    out, err = run_hook("subagent-start", B, root)
    assert err == ""
    text = context_of(out, "SubagentStart")
    head, rules = text.split("\n")
    assert head == (
        f"Heartbeat (subagent): your parent is session {B}; it holds plan 043 "
        f"(fencing token 2) on branch main, worktree {os.getcwd()}."
    )
    assert rules.startswith("Rules: the parent holds the plan, not you. Do not call claim_plan")
    assert "report back to your parent" in rules
    assert len(text.split()) < 150  # compact: about 200 tokens


def test_subagent_start_without_a_plan_is_a_short_note(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    directory_world(A, 101)
    out, _ = run_hook("subagent-start", A, root)
    text = context_of(out, "SubagentStart")
    assert text.startswith(f"Heartbeat (subagent): your parent session {A} holds no plan. ")
    assert "Do not claim, release or force plans from a subagent" in text


def test_subagent_start_says_when_the_parent_lost_its_plan(
    root: Path, directory_world: World, clock: FakeClock
) -> None:
    forced_takeover(directory_world, clock)
    path = sessions_dir(root) / f"{A}.json"
    record = json.loads(path.read_text())
    record.update(plan_id="043", fencing_token=1)
    path.write_text(json.dumps(record))
    out, _ = run_hook("subagent-start", A, root)
    text = context_of(out, "SubagentStart")
    assert "its claim on plan 043 (fencing token 1)" in text
    assert f"was taken over by session {B}. Do not work on 043" in text


# -- PostgreSQL ------------------------------------------------------------------------


def test_postgres_the_loss_is_told_once_even_to_concurrent_hooks(
    root: Path, pg: tuple[Any, dict[str, str]], clock: FakeClock
) -> None:
    store, env = pg
    forced_takeover(world(store, clock, FakeProbe()), clock)
    assert run_hook("post-tool-use", B, root, env) == ("", "")
    processes = [start_hook("post-tool-use", A, root, env) for _ in range(3)]
    outputs = [process.communicate(timeout=30) for process in processes]
    assert all(process.returncode == 0 for process in processes)
    told = [out for out, _ in outputs if out]
    assert len(told) == 1, outputs
    assert context_of(told[0], "PostToolUse") == expected_notice(clock)
    assert run_hook("user-prompt-submit", A, root, env) == ("", "")
    assert [e.event for e in store.plan_history("043", None)].count("loss_notified") == 1
    out, _ = run_hook("subagent-start", B, root, env)
    assert "it holds plan 043 (fencing token 2)" in context_of(out, "SubagentStart")


# -- the example settings ------------------------------------------------------------


def test_the_example_settings_enable_every_hook_and_the_status_line() -> None:
    example = Path(__file__).resolve().parent.parent / "claude-settings.json.example"
    settings = json.loads(example.read_text())
    commands = {
        event: [hook["command"] for group in groups for hook in group["hooks"]]
        for event, groups in settings["hooks"].items()
    }
    prefix = '"$CLAUDE_PROJECT_DIR"/.venv/bin/mcp-server-heartbeat '
    assert commands == {
        "SessionStart": [prefix + "hook session-start"],
        "SessionEnd": [prefix + "hook session-end"],
        "PostToolUse": [prefix + "hook post-tool-use"],
        "UserPromptSubmit": [prefix + "hook user-prompt-submit"],
        "SubagentStart": [prefix + "hook subagent-start"],
    }
    assert settings["statusLine"]["command"] == prefix + "statusline"
    for event in (
        "session-start",
        "session-end",
        "post-tool-use",
        "user-prompt-submit",
        "subagent-start",
    ):
        done = subprocess.run(
            [sys.executable, "-m", "mcp_server_heartbeat", "hook", event, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (event, done.stderr)
