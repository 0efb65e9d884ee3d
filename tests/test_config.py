"""Configuration: flags > environment > .ahrena/.directives > defaults, root
resolution, and bad values refused with one line naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server_heartbeat.domain.errors import ConfigError
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.repository import Repository
from stdio_client import run_console


def no_git(_: Path) -> Path | None:
    return None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


def directives(root: Path, text: str) -> None:
    (root / ".ahrena").mkdir(exist_ok=True)
    (root / ".ahrena" / ".directives").write_text(text)


def test_defaults(root):
    config = resolve_config(Flags(root=str(root)), {}, root, no_git)
    assert config.dir_path == root / ".ahrena/workflow/sessions"
    assert (config.interval.value, config.stale_after.value, config.idle_after.value) == (
        30.0,
        300.0,
        600.0,
    )
    assert config.enabled.value is True
    assert {config.directory.source, config.interval.source} == {"default"}


def test_flags_beat_environment_beat_directives(root):
    directives(
        root,
        "session_tracking:\n  heartbeat_dir: from-directives\n  stale_threshold_minutes: 10\n",
    )
    from_directives = resolve_config(Flags(root=str(root)), {}, root, no_git)
    assert from_directives.dir_path == root / "from-directives"
    assert from_directives.stale_after.value == 600.0
    assert (
        from_directives.stale_after.source == "directives session_tracking.stale_threshold_minutes"
    )

    env = {"HEARTBEAT_DIR": "from-env", "HEARTBEAT_STALE_AFTER": "120", "HEARTBEAT_INTERVAL": "5"}
    from_env = resolve_config(Flags(root=str(root)), env, root, no_git)
    assert from_env.dir_path == root / "from-env"
    assert (from_env.stale_after.value, from_env.stale_after.source) == (
        120.0,
        "env HEARTBEAT_STALE_AFTER",
    )
    assert from_env.interval.value == 5.0

    flags = Flags(root=str(root), dir="/abs/flag-dir", stale_after="90", interval="3")
    from_flags = resolve_config(flags, env, root, no_git)
    assert from_flags.dir_path == Path("/abs/flag-dir")
    assert (from_flags.stale_after.value, from_flags.stale_after.source) == (
        90.0,
        "flag --stale-after",
    )
    assert from_flags.interval.value == 3.0


def test_root_resolution_order(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    env = {"CLAUDE_PROJECT_DIR": str(other)}
    assert resolve_config(Flags(root=str(root)), env, root, no_git).root.value == str(root)
    by_env = resolve_config(Flags(), env, root, no_git)
    assert (by_env.root.value, by_env.root.source) == (str(other), "env CLAUDE_PROJECT_DIR")
    by_git = resolve_config(Flags(), {}, root / ".", lambda _: Repository(other, root))
    assert (by_git.root.value, by_git.root.source) == (
        str(other),
        "working directory, its repository root",
    )
    assert by_git.worktree.value == str(root)
    by_cwd = resolve_config(Flags(), {}, root, no_git)
    assert (by_cwd.root.value, by_cwd.root.source) == (str(root), "working directory")


def test_tracking_disabled_by_directives(root):
    directives(root, "session_tracking:\n  enabled: false\n")
    config = resolve_config(Flags(root=str(root)), {}, root, no_git)
    assert (config.enabled.value, config.enabled.source) == (
        False,
        "directives session_tracking.enabled",
    )


@pytest.mark.parametrize(
    ("flags", "env", "text", "says"),
    [
        (Flags(interval="0"), {}, None, "interval '0' (flag --interval) is not accepted"),
        (Flags(stale_after="-1"), {}, None, "stale-after '-1' (flag --stale-after)"),
        (Flags(), {"HEARTBEAT_INTERVAL": "soon"}, None, "interval 'soon' (env HEARTBEAT_INTERVAL)"),
        (Flags(interval="400"), {}, None, "must be below stale-after"),
        (Flags(), {}, "session_tracking: [", "not valid YAML at line"),
        (Flags(), {}, "- a list\n", "expected a YAML mapping"),
        (Flags(), {}, "session_tracking:\n  enabled: maybe\n", "enabled must be true or false"),
        (Flags(), {}, "session_tracking:\n  stale_threshold_minutes: 0\n", "seconds > 0"),
        (Flags(root="/does/not/exist"), {}, None, "is not a directory"),
    ],
)
def test_bad_values_are_refused_naming_the_value(root, flags, env, text, says):
    if text is not None:
        directives(root, text)
    if flags.root is None:
        flags = flags._replace(root=str(root))
    with pytest.raises(ConfigError) as caught:
        resolve_config(flags, env, root, no_git)
    assert says in str(caught.value)


def test_invalid_directives_stop_the_server_with_exit_2_before_the_transport(root):
    directives(root, "session_tracking: [\n")
    done = run_console(root)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and "not valid YAML" in done.stderr


def test_a_directory_that_cannot_be_created_is_exit_2(root):
    (root / "blocker").write_text("a file where the directory should go")
    done = run_console(root, "--dir", "blocker/sessions")
    assert (done.returncode, done.stdout) == (2, "")
    assert "cannot create the heartbeat directory" in done.stderr
    assert (root / "blocker").read_text() == "a file where the directory should go"


def test_a_bad_session_id_is_exit_2(root):
    done = run_console(root, "--session-id", "../escape")
    assert done.returncode == 2
    assert "--session-id '../escape' is not accepted" in done.stderr
    assert not (root.parent / "escape.json").exists()
