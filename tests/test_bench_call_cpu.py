"""bench/bench_call_cpu.py runs end to end and reports (not its speed): every
row printed with its three figures, exit code 0 (every refused claim answered
held_by_other)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_call_cpu.py"
NUMBER = r"\d+\.\d+"


def test_bench_call_cpu_runs_and_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--calls", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for row in ("refused claim_plan", "heartbeat", "floor: bare echo"):
        figures = rf"\s+{NUMBER} ms\s+{NUMBER} ms\s+{NUMBER} ms"
        assert re.search(re.escape(row) + figures, done.stdout), done.stdout
