"""The lock holder's command, as shown in "stayed locked" errors and ``status``,
never carries a secret from its command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from mcp_server_heartbeat.store.directory.lockholder import describe_process
from stdio_client import wait_until


def test_a_holders_secrets_never_reach_the_description(tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text("import time\ntime.sleep(60)\n")
    cases = [
        ["--token", "ghp_SECRET"],
        ["postgresql://u:pw_SECRET@db/x"],
        ["PGPASSWORD=pw_SECRET"],
        ["--store", "pw_SECRET"],
        ["user@pw_SECRET"],
    ]
    for args in cases:
        process = subprocess.Popen([sys.executable, str(script), *args])
        try:
            # Between fork and exec the child still shows the parent's command line.
            wait_until(
                lambda pid=process.pid: str(script) in psutil.Process(pid).cmdline(),
                what="the holder to start",
            )
            holder = describe_process(process.pid, [])
        finally:
            process.kill()
            process.wait()
        assert holder.command is not None and holder.command.startswith("python")
        assert "holder.py" in holder.command
        assert "SECRET" not in holder.command, holder.command
