"""Figures for the Claude Code hooks: whole runs of ``hook session-start``,
``hook session-end``, ``hook post-tool-use`` (nothing lost; a loss already
told; the first notice of a loss), ``hook user-prompt-submit`` and ``hook
subagent-start``, interpreter start included (milliseconds).

    python bench/bench_hooks.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "hooks"


SID = "4f6b8a0e-5c1d-4d1e-9a57-2d8f0c3b7e41"
OTHER = "9d81e4b2-1111-4111-8111-11111111111b"


def run(event: str, fixture: str, root: Path, expect_output: bool | None = None) -> float:
    data = json.loads((FIXTURES / f"{fixture}.json").read_text())
    data["cwd"] = str(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE"))}
    env["CLAUDE_PROJECT_DIR"] = str(root)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "hook", event],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=False,
    )
    elapsed = (time.perf_counter() - began) * 1000
    if done.returncode != 0 or done.stderr:
        raise SystemExit(f"hook {event} failed: {done.stderr}")
    if expect_output is not None and bool(done.stdout) != expect_output:
        raise SystemExit(f"hook {event}: unexpected output {done.stdout!r}")
    return elapsed


def world(root: Path) -> tuple[object, object]:
    """A fresh heartbeat directory in ``root``: SID holds plan 043 (token 1),
    its heartbeat 6 min old; OTHER exists. Returns (SID's, OTHER's) services."""
    import shutil
    import socket
    from datetime import UTC, datetime, timedelta

    from mcp_server_heartbeat.domain.liveness import Thresholds
    from mcp_server_heartbeat.host.identity import Identity
    from mcp_server_heartbeat.session.service import SessionService
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    directory = root / ".ahrena" / "workflow" / "sessions"
    shutil.rmtree(directory, ignore_errors=True)
    moment = [datetime.now(UTC) - timedelta(seconds=400)]
    store = DirectoryStore(directory, clock=lambda: moment[0])
    store.prepare()

    def service(session_id: str, pid: int) -> SessionService:
        identity = Identity(
            session_id=session_id,
            session_id_source="bench",
            entrypoint="cli",
            agent_version="bench/1",
            branch="main",
            cwd=str(root),
            host=socket.gethostname(),
            pid=pid,
            pid_started_at=None,
            client_pid=1,
        )
        made = SessionService(store, identity, Thresholds(), interval=30.0, clock=lambda: moment[0])
        made.start()
        return made

    mine = service(SID, os.getpid())
    mine.claim("043")
    moment[0] += timedelta(seconds=360)
    return mine, service(OTHER, os.getpid())


def loss_hooks(root: Path, runs: int) -> None:
    """Time the loss hooks and subagent-start over a heartbeat directory."""

    def report(label: str, times: list[float]) -> None:
        times.sort()
        print(f"hook {label:38s} p50 {statistics.median(times):6.1f} ms   max {times[-1]:6.1f} ms")

    world(root)
    report(
        "post-tool-use, nothing lost",
        [run("post-tool-use", "post_tool_use", root, False) for _ in range(runs)],
    )
    report(
        "user-prompt-submit, nothing lost",
        [run("user-prompt-submit", "user_prompt_submit", root, False) for _ in range(runs)],
    )
    report(
        "subagent-start, plan held",
        [run("subagent-start", "subagent_start", root, True) for _ in range(runs)],
    )
    first = []
    for _ in range(runs):
        _mine, other = world(root)
        other.claim("043", force=True)  # type: ignore[attr-defined]
        first.append(run("post-tool-use", "post_tool_use", root, True))
    report("post-tool-use, first notice of a loss", first)
    report(
        "post-tool-use, loss already told",
        [run("post-tool-use", "post_tool_use", root, False) for _ in range(runs)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-hooks-"))
    for event, fixture in (
        ("session-start", "session_start_startup"),
        ("session-end", "session_end_logout"),
    ):
        times = sorted(run(event, fixture, root) for _ in range(args.runs))
        print(
            f"hook {event:14s} p50 {statistics.median(times):6.1f} ms   "
            f"max {times[-1]:6.1f} ms  (n={args.runs})"
        )
    loss_hooks(root, args.runs)


if __name__ == "__main__":
    main()
