"""One repository, one coordination domain: worktrees, bare repositories and
subdirectories resolve to one heartbeat directory (design: "coordination domain").

The repository tests run real ``git``; the end-to-end tests run the installed
console script over real stdio in two worktrees of one repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.repository import find_repository
from stdio_client import StdioServer, clean_env

FAST = ("--interval", "0.2", "--stale-after", "5")
DIR = Path(".ahrena/workflow/sessions")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"},
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit and a linked worktree ``wt1`` beside it."""
    main = tmp_path / "repo"
    (main / "sub" / "deeper").mkdir(parents=True)
    git(tmp_path, "init", "-q", "-b", "main", str(main))
    (main / "README").write_text("x\n")
    git(main, "add", "README")
    git(main, "commit", "-q", "-m", "first")
    git(main, "worktree", "add", "-q", "-b", "feature", str(tmp_path / "wt1"))
    return main


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare repository ``repo.git`` with two linked worktrees ``a`` and ``b``."""
    source = tmp_path / "source"
    git(tmp_path, "init", "-q", "-b", "main", str(source))
    (source / "README").write_text("x\n")
    git(source, "add", "README")
    git(source, "commit", "-q", "-m", "first")
    bare_dir = tmp_path / "repo.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare_dir))
    git(bare_dir, "worktree", "add", "-q", str(tmp_path / "a"), "main")
    git(bare_dir, "worktree", "add", "-q", "-b", "other", str(tmp_path / "b"))
    return bare_dir


# -- where each layout resolves ---------------------------------------------------------


def test_subdirectory_and_linked_worktree_resolve_to_the_main_working_tree(repo):
    wt1 = repo.parent / "wt1"
    assert find_repository(repo / "sub" / "deeper").root == repo
    assert find_repository(repo / "sub" / "deeper").worktree == repo
    linked = find_repository(wt1)
    assert (linked.root, linked.worktree, linked.bare) == (repo, wt1, False)


def test_bare_repository_worktrees_resolve_to_the_bare_repository(bare):
    a = find_repository(bare.parent / "a")
    b = find_repository(bare.parent / "b")
    assert a.root == b.root == bare
    assert (a.worktree, b.worktree, a.bare) == (bare.parent / "a", bare.parent / "b", True)


def test_separate_git_dir_with_a_linked_worktree(tmp_path):
    main, gitdir = tmp_path / "main", tmp_path / "elsewhere.git"
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(gitdir), str(main))
    (main / "f").write_text("x\n")
    git(main, "add", "f")
    git(main, "commit", "-q", "-m", "first")
    git(main, "worktree", "add", "-q", "-b", "w", str(tmp_path / "w"))
    # git records no main working tree here: every checkout shares the git directory.
    assert find_repository(main).root == gitdir
    assert find_repository(tmp_path / "w").root == gitdir


def test_a_submodule_is_its_own_repository(repo, tmp_path):
    lib = tmp_path / "lib"
    git(tmp_path, "init", "-q", "-b", "main", str(lib))
    (lib / "f").write_text("x\n")
    git(lib, "add", "f")
    git(lib, "commit", "-q", "-m", "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    found = find_repository(repo / "vendor" / "lib")
    assert (found.root, found.worktree) == (repo / "vendor" / "lib", repo / "vendor" / "lib")


def test_outside_a_repository_the_launch_directory_is_the_root(tmp_path):
    assert find_repository(tmp_path) is None
    config = resolve_config(Flags(), {}, tmp_path)
    assert config.root.value == str(tmp_path.resolve())
    assert config.worktree.value is None


def test_every_launch_place_of_one_repository_shares_one_directory(repo, bare):
    wt1 = repo.parent / "wt1"
    places = [
        ({"CLAUDE_PROJECT_DIR": str(repo / "sub" / "deeper")}, repo),
        ({"CLAUDE_PROJECT_DIR": str(wt1)}, wt1),
        ({}, wt1 / "."),
    ]
    dirs = {resolve_config(Flags(), env, cwd).directory.value for env, cwd in places}
    assert dirs == {str(repo / DIR)}
    from_bare = {
        resolve_config(Flags(), {}, bare.parent / name).directory.value for name in ("a", "b")
    }
    assert from_bare == {str(bare / DIR)}


def test_scope_worktree_keeps_one_directory_per_worktree(repo):
    wt1 = repo.parent / "wt1"
    config = resolve_config(Flags(scope="worktree"), {}, wt1)
    assert config.directory.value == str(wt1 / DIR)
    by_env = resolve_config(Flags(), {"HEARTBEAT_SCOPE": "worktree"}, repo / "sub")
    assert by_env.directory.value == str(repo / DIR)
    assert by_env.scope.source == "env HEARTBEAT_SCOPE"


def directives(where: Path, text: str) -> None:
    (where / ".ahrena").mkdir(exist_ok=True)
    (where / ".ahrena" / ".directives").write_text("session_tracking:\n" + text)


def test_a_worktrees_own_directives_cannot_split_the_domain(repo):
    wt1 = repo.parent / "wt1"
    directives(repo, "  stale_threshold_minutes: 10\n")
    directives(wt1, "  heartbeat_dir: .ahrena/elsewhere\n  stale_threshold_minutes: 1\n")
    config = resolve_config(Flags(), {}, wt1)
    assert config.directory.value == str(repo / DIR)
    assert config.stale_after.value == 600.0
    assert config.stale_after.source == "directives session_tracking.stale_threshold_minutes"


def test_scope_worktree_in_a_worktrees_directives_keeps_it_apart(repo):
    wt1 = repo.parent / "wt1"
    directives(wt1, "  scope: worktree\n")
    assert resolve_config(Flags(), {}, wt1).directory.value == str(wt1 / DIR)
    assert resolve_config(Flags(), {}, repo).directory.value == str(repo / DIR)


def test_a_bare_repositorys_worktrees_read_their_own_directives(bare):
    a = bare.parent / "a"
    directives(a, "  stale_threshold_minutes: 2\n")
    assert resolve_config(Flags(), {}, a).stale_after.value == 120.0


def test_an_explicit_directory_still_wins(repo):
    wt1 = repo.parent / "wt1"
    config = resolve_config(Flags(dir="/tmp/elsewhere-hb"), {}, wt1)
    assert config.directory.value == "/tmp/elsewhere-hb"
    relative = resolve_config(Flags(), {"HEARTBEAT_DIR": "hb"}, wt1)
    assert relative.directory.value == str(repo / "hb")


def test_an_unknown_scope_is_refused_with_what_is_accepted(repo):
    from mcp_server_heartbeat.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="use one of repository or worktree"):
        resolve_config(Flags(), {"HEARTBEAT_SCOPE": "branch"}, repo)


# -- end to end over real stdio -----------------------------------------------------------


def start(cwd: Path, session_id: str, started: list[StdioServer]) -> StdioServer:
    server = StdioServer(cwd, "--session-id", session_id, *FAST, env=clean_env(cwd))
    started.append(server)
    server.initialize()
    return server


@pytest.fixture
def servers():
    started: list[StdioServer] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["worktree", "bare"])
def test_two_worktrees_never_both_hold_a_plan(layout, repo, bare, servers):
    if layout == "worktree":
        first_dir, second_dir, shared = repo, repo.parent / "wt1", repo / DIR
    else:
        first_dir, second_dir, shared = bare.parent / "a", bare.parent / "b", bare / DIR
    first = start(first_dir, "first", servers)
    second = start(second_dir, "second", servers)
    assert first.call("claim_plan", plan_id="043")["structuredContent"]["outcome"] == "claimed"
    refused = second.call("claim_plan", plan_id="043")["structuredContent"]
    assert (refused["outcome"], refused["holder"]["session_id"]) == ("held_by_other", "first")
    for me, other, other_tree in ((first, "second", second_dir), (second, "first", first_dir)):
        listed = me.call("list_sessions")["structuredContent"]["sessions"]
        seen = {view["session_id"]: view for view in listed}
        assert other in seen
        assert seen[other]["worktree"] == str(other_tree)
    assert sorted(p.name for p in shared.glob("*.json")) == ["first.json", "second.json"]
    info = second.call("session_info")["structuredContent"]
    assert info["session"]["worktree"] == str(second_dir)


@pytest.mark.slow
def test_a_server_started_in_a_subdirectory_writes_to_the_repository(repo, servers):
    deeper = repo / "sub" / "deeper"
    start(deeper, "deep", servers)
    assert (repo / DIR / "deep.json").is_file()
    assert not (deeper / ".ahrena").exists()
    status = subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "status", "--json"],
        cwd=deeper,
        env=clean_env(deeper),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    sessions = json.loads(status.stdout)["sessions"]
    assert [view["session_id"] for view in sessions] == ["deep"]


def test_an_orphaned_worktree_is_its_own_root_never_a_path_inside_git(repo):
    wt1 = repo.parent / "wt1"
    admin = repo / ".git" / "worktrees" / "wt1"
    for child in sorted(admin.rglob("*"), reverse=True):
        child.unlink() if child.is_file() else child.rmdir()
    admin.rmdir()
    found = find_repository(wt1)
    assert (found.root, found.worktree) == (wt1, wt1)
    config = resolve_config(Flags(), {}, wt1)
    assert config.directory.value == str(wt1 / DIR)
    assert not (repo / ".git" / "worktrees" / "wt1").exists()


def test_without_directives_at_the_root_a_branchs_copy_is_ignored(repo):
    wt1 = repo.parent / "wt1"
    directives(wt1, "  heartbeat_dir: .ahrena/elsewhere\n  enabled: false\n")
    config = resolve_config(Flags(), {}, wt1)
    assert config.directory.value == str(repo / DIR)
    assert config.enabled.value is True
