"""``pre-push`` refuses only a proven loss. With the directory store (one per
clone, git-ignored), a person who merges a colleague's branch, whose commits
the colleague's session made under a valid claim in the colleague's clone,
pushes it: a token this store does not know is reported, not refused
(``verify`` against a shared store still refuses it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stdio_client import StdioServer, clean_env
from test_git_fence import as_person, commit, console, git, make_repo

pytestmark = pytest.mark.slow


def test_a_person_pushing_a_colleagues_claimed_commits_is_not_refused(tmp_path: Path):
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    # the colleague's clone: a session holds 043 and commits with the trailer
    theirs = make_repo(tmp_path / "theirs")
    assert console(theirs, "install-git-hooks").returncode == 0
    git(theirs, "remote", "add", "origin", str(bare))
    git(theirs, "push", "-q", "-u", "origin", "main")
    colleague = StdioServer(theirs, "--session-id", "colleague-session", "--interval", "0.5")
    try:
        colleague.initialize()
        claimed = colleague.call("claim_plan", plan_id="043")["structuredContent"]
        assert claimed["outcome"] == "claimed"
        git(theirs, "checkout", "-q", "-b", "feature")
        env = clean_env(theirs, HEARTBEAT_SESSION_ID="colleague-session")
        assert commit(theirs, "login.py", env).returncode == 0
        assert "Heartbeat-Claim: 043#1" in git(theirs, "log", "-1", "--format=%B").stdout
        git(theirs, "push", "-q", "-u", "origin", "feature", env=env)
    finally:
        colleague.stop()
    # my clone: its own heartbeat directory (a session of mine ran here once)
    mine = tmp_path / "mine"
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(mine))
    git(mine, "config", "user.email", "me@example.com")
    git(mine, "config", "user.name", "Me")
    assert console(mine, "install-git-hooks").returncode == 0
    own = StdioServer(mine, "--session-id", "my-session", "--interval", "0.5")
    try:
        own.initialize()
    finally:
        own.stop()
    # I (a person, outside any session) merge the colleague's branch and push main
    git(mine, "merge", "-q", "--ff-only", "origin/feature")
    rc, output = as_person(mine, "git push -q origin main")
    assert rc == 0, output
