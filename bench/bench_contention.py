"""Contended claims on the heartbeat directory alone: 8 processes, 1 plan.

Usage: python bench/bench_contention.py [--processes 8] [--rounds 300] [--repeats 3]

The directory half of ``bench/bench_store.py``'s race (same racers, same
checker: tokens strictly increasing, never two holders, every grant released,
the ledger's counter equal to the last token), repeated; prints granted
claims/s and attempts/s for each run, then min / median / max. Exit code 1 on
any violation, never for slowness.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import open_store, race


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    rates: list[float] = []
    violations = 0
    for run in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-contention-") as tmp:
            spec = {"kind": "directory", "path": str(Path(tmp) / "sessions")}
            open_store(spec).prepare()
            result = race(spec, args.processes, args.rounds, args.timeout)
        per_s = result["grants"] / result["elapsed"]
        rates.append(per_s)
        violations += len(result["violations"])
        print(
            f"run {run + 1}: {result['attempts']} attempts, {result['grants']} granted in "
            f"{result['elapsed']:.2f} s: {per_s:.0f} granted/s, "
            f"{result['attempts'] / result['elapsed']:.0f} attempts/s, final token "
            f"{result['final']}, violations {len(result['violations'])}"
        )
        for line in result["violations"][:10]:
            print(f"  {line}")
    print(
        f"granted/s min / median / max: {min(rates):.0f} / {statistics.median(rates):.0f} / "
        f"{max(rates):.0f}; violations {violations}"
    )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
