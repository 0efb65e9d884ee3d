"""Fenced commits over real processes: real ``git`` in temporary repositories
with the hooks installed by the real console script, session records and
claims written by real stdio servers (this test process plays Claude Code:
the servers' client, and an ancestor of every ``git`` it runs).

A "person" commits from a process that is not a descendant of this test
process (double fork), so no server's client is among its ancestors.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stdio_client import CONSOLE_SCRIPT, StdioServer, clean_env

pytestmark = pytest.mark.slow


def git(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):
    done = subprocess.run(
        ["git", *args],
        cwd=root,
        env=env or clean_env(root),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"git {args}: {done.stdout}{done.stderr}"
    return done


def console(root: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [CONSOLE_SCRIPT, *args],
        cwd=root,
        env=env or clean_env(root),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / ".gitignore").write_text(".ahrena/\n")
    git(root, "add", ".gitignore")
    git(root, "commit", "-q", "-m", "initial")
    return root


def commit(root: Path, name: str, env: dict[str, str] | None = None, *extra: str):
    (root / name).write_text(name + "\n")
    git(root, "add", name, env=env)
    return git(root, "commit", "-q", "-m", f"add {name}", *extra, env=env, check=False)


def message(root: Path, rev: str = "HEAD") -> str:
    return git(root, "log", "-1", "--format=%B", rev).stdout


def as_person(root: Path, command: str) -> tuple[int, str]:
    """Run ``command`` in a shell whose parent exits at once (reparented away
    from this process): no session's client is among its ancestors."""
    out = root.parent / f"person-{time.monotonic_ns()}"
    script = (
        f"( {command} ) > '{out}.log' 2>&1; echo $? > '{out}.rc.tmp'; mv '{out}.rc.tmp' '{out}.rc'"
    )
    subprocess.run(
        ["sh", "-c", f"({script}) </dev/null >/dev/null 2>&1 &"],
        cwd=root,
        env=clean_env(root),
        check=True,
        timeout=30,
    )
    rc = Path(f"{out}.rc")
    deadline = time.monotonic() + 60
    while not rc.exists():
        assert time.monotonic() < deadline, "the person's command did not finish"
        time.sleep(0.05)
    return int(rc.read_text()), Path(f"{out}.log").read_text()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "project")
    done = console(root, "install-git-hooks")
    assert done.returncode == 0, done.stderr
    return root


def env_for(root: Path, session_id: str | None) -> dict[str, str]:
    return clean_env(root, **({"HEARTBEAT_SESSION_ID": session_id} if session_id else {}))


def test_commit_from_a_holding_session_gets_the_trailer_and_a_lost_one_is_refused(repo, tmp_path):
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "-u", "origin", "main")
    alpha = StdioServer(repo, "--session-id", "alpha-session", "--interval", "0.5")
    beta = None
    try:
        alpha.initialize()
        claimed = alpha.call("claim_plan", plan_id="043")["structuredContent"]
        assert claimed["outcome"] == "claimed"
        token = claimed["fencing_token"]

        done = commit(repo, "a.txt", env_for(repo, "alpha-session"))
        assert done.returncode == 0, done.stderr
        assert f"Heartbeat-Claim: 043#{token}" in message(repo)
        # amend: idempotent, never twice
        git(repo, "commit", "-q", "--amend", "--no-edit", env=env_for(repo, "alpha-session"))
        assert message(repo).count("Heartbeat-Claim:") == 1
        # found without the variable: the server whose client is git's ancestor
        done = commit(repo, "b.txt", clean_env(repo))
        assert done.returncode == 0, done.stderr
        assert f"Heartbeat-Claim: 043#{token}" in message(repo)
        git(repo, "push", "-q", env=env_for(repo, "alpha-session"))

        alpha.stop()  # kill -9: beta takes 043 over on proof of death
        beta = StdioServer(repo, "--session-id", "beta-session", "--interval", "0.5")
        beta.initialize()
        taken = beta.call("claim_plan", plan_id="043")["structuredContent"]
        assert taken["outcome"] == "taken_over", taken
        assert taken["fencing_token"] == token + 1

        done = commit(repo, "c.txt", env_for(repo, "alpha-session"))
        assert done.returncode != 0
        assert "commit refused" in done.stderr
        assert "beta-ses" in done.stderr and socket.gethostname() in done.stderr
        assert "proof" in done.stderr and "--no-verify" in done.stderr
        assert git(repo, "status", "--porcelain").stdout.strip() == "A  c.txt"

        done = commit(repo, "c.txt", env_for(repo, "alpha-session"), "--no-verify")
        assert done.returncode == 0, done.stderr
        assert "Heartbeat-Claim" not in message(repo)  # alpha holds nothing now
        pushed = git(repo, "push", env=env_for(repo, "alpha-session"), check=False)
        assert pushed.returncode != 0
        assert "push refused" in pushed.stderr and "beta-ses" in pushed.stderr
        # the holder's own commits go through, with its token
        done = commit(repo, "d.txt", env_for(repo, "beta-session"))
        assert done.returncode == 0, done.stderr
        assert f"Heartbeat-Claim: 043#{token + 1}" in message(repo)
    finally:
        alpha.stop()
        if beta is not None:
            beta.stop()


def test_a_persons_commit_outside_any_session_is_untouched(repo):
    server = StdioServer(repo, "--session-id", "agent-session", "--interval", "0.5")
    try:
        server.initialize()
        assert server.call("claim_plan", plan_id="043")["structuredContent"]["claimed"]
        (repo / "p.txt").write_text("p\n")
        rc, log = as_person(repo, "git add p.txt && git commit -q -m 'by a person'")
        assert rc == 0, log
        assert message(repo) == "by a person\n\n"
    finally:
        server.stop()


def test_existing_hooks_are_chained_and_a_failing_one_still_fails(tmp_path):
    root = make_repo(tmp_path / "project")
    hooks = root / ".git" / "hooks"
    marker = tmp_path / "user-hook-ran"
    (hooks / "pre-commit").write_text(f"#!/bin/sh\necho ran >> '{marker}'\nexit 0\n")
    (hooks / "pre-commit").chmod(0o755)
    (hooks / "pre-push").write_text("#!/bin/sh\ncat > /dev/null\nexit 0\n")
    (hooks / "pre-push").chmod(0o755)
    original = (hooks / "pre-commit").read_text()

    first = console(root, "install-git-hooks")
    assert first.returncode == 0, first.stderr
    assert "chaining the existing hook: pre-commit, pre-push" in first.stdout
    scripts = {name: (hooks / name).read_text() for name in ("pre-commit", "commit-msg")}
    again = console(root, "install-git-hooks")
    assert again.returncode == 0 and "updated: prepare-commit-msg" in again.stdout
    assert {name: (hooks / name).read_text() for name in scripts} == scripts
    assert (hooks / "pre-commit.before-heartbeat").read_text() == original
    assert not (hooks / "prepare-commit-msg.before-heartbeat").exists()

    assert commit(root, "a.txt").returncode == 0
    assert marker.read_text() == "ran\n"
    (hooks / "pre-commit.before-heartbeat").write_text("#!/bin/sh\necho user says no >&2\nexit 7\n")
    done = commit(root, "b.txt")
    assert done.returncode != 0 and "user says no" in done.stderr

    removed = console(root, "install-git-hooks", "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert "restored the chained hook: pre-commit, pre-push" in removed.stdout
    assert (hooks / "pre-commit").read_text().startswith("#!/bin/sh\necho user says no")
    assert not (hooks / "prepare-commit-msg").exists()


def test_install_honours_core_hooks_path_and_worktrees_share_one_set(tmp_path):
    root = make_repo(tmp_path / "project")
    git(root, "config", "core.hooksPath", "githooks")
    done = console(root, "install-git-hooks")
    assert done.returncode == 0, done.stderr
    assert (root / "githooks" / "pre-commit").exists()
    assert not (root / ".git" / "hooks" / "pre-commit").exists()

    other = make_repo(tmp_path / "plain")
    tree = tmp_path / "linked"
    git(other, "worktree", "add", "-q", str(tree), "-b", "feature")
    done = console(tree, "install-git-hooks")
    assert done.returncode == 0, done.stderr
    assert f"hooks directory: {other / '.git' / 'hooks'}" in done.stdout
    server = StdioServer(tree, "--session-id", "tree-session", "--interval", "0.5")
    try:
        server.initialize()
        claimed = server.call("claim_plan", plan_id="044")["structuredContent"]
        assert claimed["claimed"]
        for where in (tree, other):
            assert (
                commit(where, f"{where.name}.txt", env_for(where, "tree-session")).returncode == 0
            )
            assert f"Heartbeat-Claim: 044#{claimed['fencing_token']}" in message(where)
    finally:
        server.stop()


def _commit_with_trailer(root: Path, name: str, value: str, when: str) -> str:
    env = clean_env(root, GIT_COMMITTER_DATE=when, GIT_AUTHOR_DATE=when)
    (root / name).write_text(name)
    git(root, "add", name, env=env)
    git(root, "commit", "-q", "--no-verify", "-m", f"{name}\n\nHeartbeat-Claim: {value}", env=env)
    return git(root, "rev-parse", "HEAD").stdout.strip()


def _takeover_history(root: Path, env: dict[str, str] | None = None) -> tuple[int, float]:
    """alpha claims 043, dies; beta takes it over. Returns (beta's token, the
    takeover's time as a Unix timestamp)."""
    alpha = StdioServer(root, "--session-id", "alpha-session", "--interval", "0.5", env=env)
    beta = StdioServer(root, "--session-id", "beta-session", "--interval", "0.5", env=env)
    try:
        alpha.initialize()
        assert alpha.call("claim_plan", plan_id="043")["structuredContent"]["claimed"]
        alpha.stop()
        beta.initialize()
        before = time.time()
        taken = beta.call("claim_plan", plan_id="043")["structuredContent"]
        assert taken["outcome"] == "taken_over", taken
        return taken["fencing_token"], before
    finally:
        alpha.stop()
        beta.stop()


def _verify_range(root: Path, env: dict[str, str], *extra: str) -> tuple[int, dict]:
    done = console(root, "verify", "--json", *extra, env=env)
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, json.loads(done.stdout)


def _check_verdicts(root: Path, env: dict[str, str], new_token: int, at: float) -> None:
    base = git(root, "rev-parse", "HEAD").stdout.strip()
    early = f"@{int(at) - 3600} +0000"
    late = f"@{int(at) + 3600} +0000"
    made_before = _commit_with_trailer(root, "before.txt", f"043#{new_token - 1}", early)
    made_after = _commit_with_trailer(root, "after.txt", f"043#{new_token - 1}", late)
    current = _commit_with_trailer(root, "current.txt", f"043#{new_token}", late)
    unknown = _commit_with_trailer(root, "unknown.txt", f"043#{new_token + 5}", late)
    code, report = _verify_range(root, env, f"{base}..HEAD")
    assert code == 3
    status = {claim["commit"]: claim["status"] for claim in report["claims"]}
    assert status == {
        made_before: "valid",
        made_after: "lost",
        current: "valid",
        unknown: "unknown",
    }
    assert report["refused"] == 2 and report["with_claim"] == 4
    code, _report = _verify_range(root, env, f"{base}..{made_before}")
    assert code == 0
    text = console(root, "verify", f"{base}..HEAD", env=env)
    assert text.returncode == 3
    assert "taken over by session beta-ses" in text.stdout
    assert "4 commit(s)" in text.stdout and "2 refused" in text.stdout


def test_verify_judges_a_range_by_the_event_log(tmp_path):
    root = make_repo(tmp_path / "project")
    new_token, at = _takeover_history(root)
    _check_verdicts(root, clean_env(root), new_token, at)


def test_verify_against_postgresql(tmp_path):
    from pg_support import drop_schema, random_schema, test_dsn

    dsn = test_dsn()
    schema = random_schema()
    root = make_repo(tmp_path / "project")
    env = clean_env(
        root, HEARTBEAT_STORE=dsn, HEARTBEAT_SCHEMA=schema, HEARTBEAT_PROJECT="fence-test"
    )
    try:
        new_token, at = _takeover_history(root, env)
        assert not (root / ".ahrena").exists()  # everything went to the database
        _check_verdicts(root, env, new_token, at)
        # without the database's configuration the same range is unknown (empty directory)
        code, report = _verify_range(root, clean_env(root), "HEAD~4..HEAD")
        assert code == 3 and {c["status"] for c in report["claims"]} == {"unknown"}
    finally:
        drop_schema(dsn, schema)


def test_the_start_hook_exports_the_session_through_claude_env_file(tmp_path):
    root = make_repo(tmp_path / "project")
    env_file = tmp_path / "sessionstart-hook-0.sh"
    env_file.write_text("export OTHER=1\n")
    payload = {"session_id": "conv-1", "cwd": str(root), "source": "startup"}
    done = subprocess.run(
        [CONSOLE_SCRIPT, "hook", "session-start"],
        input=json.dumps(payload),
        cwd=root,
        env=clean_env(root, CLAUDE_ENV_FILE=str(env_file)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout)["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert env_file.read_text() == "export OTHER=1\nexport HEARTBEAT_SESSION_ID=conv-1\n"
    sourced = subprocess.run(
        ["sh", "-c", f". '{env_file}' && printf %s \"$HEARTBEAT_SESSION_ID\""],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sourced.stdout == "conv-1"


def test_a_continued_session_is_found_from_the_conversation_id(tmp_path):
    """The variable names the conversation id; its server runs as ``<id>-2``
    because a live process still ran under ``<id>`` (here: a stuck old server)."""
    root = make_repo(tmp_path / "project")
    assert console(root, "install-git-hooks").returncode == 0
    # another client (a wrapper process that stays) runs the old server, so the new
    # one is not this client's own reconnection (which would adopt the id)
    wrapper = (
        sys.executable,
        "-c",
        "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
    )
    old = StdioServer(root, "--session-id", "conv-9", "--interval", "0.5", prefix=wrapper)
    new = None
    try:
        old.initialize()  # its record exists before the second server starts
        new = StdioServer(root, "--session-id", "conv-9", "--interval", "0.5")
        assert new.initialize()
        claimed = new.call("claim_plan", plan_id="045")["structuredContent"]
        assert claimed["claimed"]
        session = new.call("session_info")["structuredContent"]
        assert session["session"]["session_id"].startswith("conv-9-")
        old.close_stdin()  # the old server ends its record and exits
        old.wait()
        rc, log = as_person(
            root,
            "export HEARTBEAT_SESSION_ID=conv-9; "
            "echo x > x.txt && git add x.txt && git commit -q -m 'from the agent shell'",
        )
        assert rc == 0, log
        assert f"Heartbeat-Claim: 045#{claimed['fencing_token']}" in message(root)
    finally:
        old.stop()
        if new is not None:
            new.stop()


def test_hooks_fail_open_when_the_store_cannot_be_read(repo):
    env = clean_env(repo, HEARTBEAT_STORE="postgresql://nobody@127.0.0.1:1/none")
    done = commit(repo, "a.txt", env)
    assert done.returncode == 0, done.stderr
    assert "check skipped" in done.stderr or done.stderr == ""
    assert os.path.exists(repo / "a.txt")


def test_a_message_written_in_the_editor_gets_the_trailer_and_an_empty_one_still_aborts(repo):
    server = StdioServer(repo, "--session-id", "editor-session", "--interval", "0.5")
    try:
        server.initialize()
        token = server.call("claim_plan", plan_id="046")["structuredContent"]["fencing_token"]
        (repo / "e.txt").write_text("e\n")
        git(repo, "add", "e.txt")
        leave = env_for(repo, "editor-session")
        leave["GIT_EDITOR"] = "true"  # leaves the message empty: git must abort
        done = git(repo, "commit", env=leave, check=False)
        assert done.returncode != 0 and "empty" in (done.stdout + done.stderr)
        write = env_for(repo, "editor-session")
        write["GIT_EDITOR"] = "sed -i '1s/^/written in the editor/'"
        done = git(repo, "commit", env=write, check=False)
        assert done.returncode == 0, done.stderr
        assert message(repo).rstrip() == f"written in the editor\n\nHeartbeat-Claim: 046#{token}"
        assert not list((repo / ".git").glob("*.heartbeat-pending"))
    finally:
        server.stop()
