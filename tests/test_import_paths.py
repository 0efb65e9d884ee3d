"""What the short-lived commands import: the status line runs on every refresh.

Each case runs the console script's entry point in a fresh interpreter, as
Claude Code runs it, and lists what it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("mcp", "pydantic", "argparse", "logging", "yaml", "anyio", "psycopg")
LIGHT = ("dataclasses", "inspect", "pathlib", "socket", "ipaddress", "typing", "threading")
"""Standard modules the status line and ``status``'s table do without: each costs
these commands milliseconds at every start (``dataclasses`` loads ``inspect``,
``pathlib`` loads ``urllib.parse`` and ``ipaddress``). ``re`` is not among them:
``json`` imports it (and the installed console script does too)."""


def loaded_by(
    argv: list[str], root: Path, stdin: str = "", heavy: tuple[str, ...] = HEAVY
) -> tuple[str, set[str]]:
    """Run the entry point with ``argv`` in a fresh interpreter: its stdout, and
    which of the ``heavy`` top-level modules it loaded."""
    probe = (
        "import sys\n"
        f"sys.argv = ['mcp-server-heartbeat', *{argv!r}]\n"
        "import mcp_server_heartbeat\n"
        "try:\n"
        "    mcp_server_heartbeat.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {heavy!r}\n"
        "found = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy})\n"
        "print('LOADED:' + ','.join(found), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE"))}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED:")][-1]
    return done.stdout, set(filter(None, line[len("LOADED:") :].split(",")))


def status_json(root: Path) -> str:
    workspace = {"current_dir": str(root), "project_dir": str(root)}
    return json.dumps({"session_id": "s-1", "cwd": str(root), "workspace": workspace})


def test_statusline_imports_no_sdk_no_pydantic_no_parser_no_yaml(tmp_path: Path) -> None:
    out, loaded = loaded_by(["statusline"], tmp_path, status_json(tmp_path))
    assert out.startswith("♥ ")
    assert loaded == set(), f"the status line loaded {sorted(loaded)}"


def test_statusline_imports_no_dataclasses_pathlib_socket_or_typing(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # in a repository, as usual
    out, loaded = loaded_by(["statusline"], tmp_path, status_json(tmp_path), heavy=LIGHT)
    assert out.startswith("♥ ")
    assert loaded == set(), f"the status line loaded {sorted(loaded)}"


def test_statusline_reads_yaml_only_when_the_directives_exist(tmp_path: Path) -> None:
    directives = tmp_path / ".ahrena" / ".directives"
    directives.parent.mkdir()
    directives.write_text("session_tracking:\n  enabled: false\n")
    out, loaded = loaded_by(["statusline"], tmp_path, status_json(tmp_path))
    assert out == "♥ session tracking is off\n"  # the directives were read
    assert loaded == {"yaml"}


def test_statusline_with_configuration_flags_skips_the_parser_too(tmp_path: Path) -> None:
    out, loaded = loaded_by(
        ["statusline", "--dir", "elsewhere", "--root=" + str(tmp_path)],
        tmp_path,
        status_json(tmp_path),
    )
    assert out.startswith("♥ ")
    assert loaded == set(), f"the status line loaded {sorted(loaded)}"


@pytest.mark.parametrize("argv", [["statusline", "--di", "elsewhere"], ["status"]])
def test_other_commands_still_parse_their_flags(tmp_path: Path, argv: list[str]) -> None:
    out, loaded = loaded_by(argv, tmp_path, status_json(tmp_path))
    assert "argparse" in loaded and "mcp" not in loaded
    assert out
