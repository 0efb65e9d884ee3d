"""bench/bench_wait.py runs end to end and reports (not its speed): the
directory backend with tiny parameters; exit code 0 (every round granted) and
every figure printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_wait.py"
NUMBER = r"\d+(?:\.\d+)?"


def test_bench_wait_runs_and_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "2", "--idle", "1", "--backends", "directory"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for row in ("events (release -> grant in the log)", "client (release answer -> wait answer)"):
        assert re.search(re.escape(row) + rf"\s+min\s+{NUMBER}\s+median\s+{NUMBER}", out), out
    assert "failed rounds: 0" in out
    assert re.search(rf"waiting server {NUMBER}, idle server {NUMBER}", out), out
