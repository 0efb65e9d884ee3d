"""Figures for the Claude Code hooks: whole runs of ``hook session-start`` and
``hook session-end``, interpreter start included (milliseconds).

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


def run(event: str, fixture: str, root: Path) -> float:
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
    return elapsed


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


if __name__ == "__main__":
    main()
