"""``.pre-commit-hooks.yaml`` with the real pre-commit framework: it installs this
repository's package in its own environment and runs our hooks at their stages.
It is in the ``test`` extra; without it the test skips, except under ``CI=true``, where
it fails (a CI run never passes without it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stdio_client import StdioServer, clean_env
from test_git_fence import git, make_repo, message

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
PRE_COMMIT = shutil.which("pre-commit", path=str(Path(sys.executable).parent))


def test_the_pre_commit_framework_runs_the_trailer_and_the_check(tmp_path):
    if PRE_COMMIT is None:
        reason = "pre-commit is not installed: pip install -e '.[test]'"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("CI=true but " + reason)
        pytest.skip(reason)
    head = git(REPO, "rev-parse", "HEAD").stdout.strip()
    root = make_repo(tmp_path / "project")
    (root / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {REPO}\n  rev: {head}\n  hooks:\n"
        "  - id: heartbeat-claim-trailer\n  - id: heartbeat-claim-check\n"
    )
    env = clean_env(root, PRE_COMMIT_HOME=str(tmp_path / "cache"))
    for kind in ("pre-commit", "prepare-commit-msg", "commit-msg"):
        done = subprocess.run(
            [PRE_COMMIT, "install", "-t", kind],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    server = StdioServer(root, "--session-id", "framework-session", "--interval", "0.5")
    try:
        server.initialize()
        token = server.call("claim_plan", plan_id="047")["structuredContent"]["fencing_token"]
        (root / "f.txt").write_text("f\n")
        git(root, "add", "f.txt", ".pre-commit-config.yaml", env=env)
        done = subprocess.run(
            ["git", "commit", "-q", "-m", "through the framework"],
            cwd=root,
            env={**env, "HEARTBEAT_SESSION_ID": "framework-session"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert message(root).count(f"Heartbeat-Claim: 047#{token}") == 1
    finally:
        server.stop()
