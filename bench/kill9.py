"""kill -9 at random points: figures (fault 2 of RELIABILITY.md).

Usage: python bench/kill9.py [--kills 500] [--dir DIR]

A victim loops claim/heartbeat/release; it is SIGKILLed at a random moment,
every other victim also at random between a temp file's write and its rename.
After each kill the files are checked and the next claimant must take the plan
(proof of death when the victim held it) with a larger token. Exit code 1 when
any violation was found.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kill_harness import run_kills


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", help="parent folder for the temp directory (default: system temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        report = run_kills(Path(tmp) / "sessions", Path(tmp) / "work", args.kills, seed=args.seed)
    print(f"kills                          {report.kills}")
    print(f"  with write/rename failpoint  {report.failpoint_kills}")
    print(f"victim claims granted          {report.victim_grants}")
    print(f"victim held the plan at kill   {report.victim_held_at_kill}")
    print(f"  taken over by proof of death {report.takeovers_by_proof_of_death}")
    print(f"plan free at kill, claimed     {report.claims_of_free_plan}")
    print(f"leftover hidden temp files     {report.leftover_temp_files}")
    print(f"last fencing token             {report.last_token}")
    print(f"elapsed                        {report.elapsed_s:.1f} s")
    print(f"violations                     {len(report.violations)}")
    for line in report.violations[:20]:
        print(f"  {line}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
