"""A ``CLAUDE_ENV_FILE`` that cannot be written costs the session-start hook
only the export (one line on stderr): the start context is printed all the
same."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from stdio_client import CONSOLE_SCRIPT, clean_env

FIXTURE = Path(__file__).parent / "fixtures" / "hooks" / "session_start_startup.json"


def test_an_unwritable_env_file_does_not_cost_the_start_context(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    payload = json.loads(FIXTURE.read_text())
    payload["cwd"] = str(root)
    env = clean_env(root, CLAUDE_ENV_FILE=str(tmp_path / "missing" / "env.sh"))
    done = subprocess.run(
        [CONSOLE_SCRIPT, "hook", "session-start"],
        input=json.dumps(payload),
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip(), f"no SessionStart output; stderr: {done.stderr}"
    assert json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
