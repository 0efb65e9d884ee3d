"""Races with a checked history: figures (fault 1 of RELIABILITY.md).

Usage: python bench/race_history.py [--processes 8] [--rounds 10000] [--plans 1]
                                    [--free] [--vandal unlink|symlink|dir] [--dir DIR]

N real processes claim/heartbeat/release through the real store; each logs
what it saw (grant with token and monotonic time, release); the checker merges
the logs: never two holders of one plan at once, tokens strictly increasing
per plan, no granted claim lost. ``--rounds`` is the number of lockstep rounds
(all processes claim together, one winner per contended plan); with ``--free``
each process loops that many times without a barrier. Exit code 1 when any
violation was found. ``--vandal`` adds a process that deletes ``<dir>/.lock``
(or replaces it with a symlink or a directory) every millisecond.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from race_harness import RaceConfig, run_race


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--plans", type=int, default=1)
    parser.add_argument("--free", action="store_true", help="no barrier: free-running loops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vandal", choices=["unlink", "symlink", "dir"], help="attack <dir>/.lock every 1 ms"
    )
    parser.add_argument("--dir", help="parent folder for the temp directory (default: system temp)")
    args = parser.parse_args()
    config = RaceConfig(
        processes=args.processes,
        rounds=args.rounds,
        plans=args.plans,
        lockstep=not args.free,
        seed=args.seed,
        vandal=args.vandal,
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        report = run_race(Path(tmp) / "sessions", Path(tmp) / "work", config, timeout_s=3600)
    mode = "free-running" if args.free else "lockstep"
    print(
        f"processes x rounds     {config.processes} x {config.rounds} ({mode}), "
        f"{config.plans} plan(s)"
    )
    print(f"claim attempts         {report.attempts}")
    print(f"claims granted         {report.grants} (each heartbeat + release)")
    print(f"elapsed                {report.elapsed_s:.1f} s")
    print(f"claims/s (granted)     {report.grants_per_s:.0f}")
    print(f"attempts/s             {report.attempts_per_s:.0f}")
    print(f"final tokens           {report.final_tokens}")
    print(f"violations             {len(report.violations)}")
    for line in report.violations[:20]:
        print(f"  {line}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
