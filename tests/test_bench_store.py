"""bench/bench_store.py runs end to end and reports (not its speed).

Runs the script as a subprocess with tiny parameters against
``HEARTBEAT_TEST_DSN``'s server (skips without it, fails when CI=true; see
tests/pg_support.py) and checks: exit code 0 (no invariant violated), every
row of the latency and contention tables printed with figures, zero
violations, and the throwaway schema dropped afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pg_support import test_dsn

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_store.py"
NUMBER = r"\d+(?:\.\d+)?"


def test_bench_store_runs_and_prints_every_row() -> None:
    dsn = test_dsn()
    env = {**os.environ, "HEARTBEAT_TEST_DSN": dsn}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dsn", dsn, "--iterations", "5", "--repeats", "2",
         "--processes", "2", "--rounds", "5"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    spread = rf"{NUMBER} / +{NUMBER} / +{NUMBER}"
    for row in (
        "postgres store (service)",
        "postgres floor (by hand)",
        "directory store (service)",
    ):
        assert re.search(rf"^  {re.escape(row)} +{spread} +{spread}$", out, re.M), out
    assert re.search(rf"^  postgres store / floor \(median p50\) +{NUMBER}x$", out, re.M), out
    for store in ("postgres", "directory"):
        # attempts = processes x rounds; at least one grant; zero violations
        found = re.search(rf"^  {store} +10 +(\d+) +{NUMBER} +\d+ +\d+ +(\d+) +0$", out, re.M)
        assert found, out
        assert int(found.group(1)) >= 1
        assert int(found.group(2)) == int(found.group(1)), out  # final token = grants
    schema = re.search(r"schema (hb_bench_[0-9a-f]{12})", out)
    assert schema, out
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema.group(1)]
        ).fetchone()
    assert left == (0,), f"schema {schema.group(1)} was not dropped"


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_store", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_final_state_check_finds_each_violation() -> None:
    # The independent final-state check must be able to fail: a counter behind
    # the last grant, a live lease left, a granted token without its lease row
    # and a row for a token never granted (a double grant writes one row for
    # two grants) are each reported; a clean state is not.
    check = _bench_module().check_final
    assert check([1, 2, 3], {"counter": 3, "live": [], "tokens": [1, 2, 3]}) == []
    assert check([1, 2, 3], {"counter": 3, "live": [], "tokens": None}) == []
    assert any(
        "counter 2" in v for v in check([1, 2, 3], {"counter": 2, "live": [], "tokens": None})
    )
    assert any("live lease" in v for v in check([1], {"counter": 1, "live": [1], "tokens": [1]}))
    assert any("no row [2]" in v for v in check([1, 2], {"counter": 2, "live": [], "tokens": [1]}))
    assert check([1, 2, 2], {"counter": 2, "live": [], "tokens": [1, 2]}) != []
    assert any(
        "never granted [3]" in v
        for v in check([1, 2], {"counter": 2, "live": [], "tokens": [1, 2, 3]})
    )
