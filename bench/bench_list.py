"""``list_sessions`` in-process, beside its floor, at 1,000 and 10,000 records.

Usage: python bench/bench_list.py [--sizes 1000,10000] [--repeats 5]

Seeds a heartbeat directory per size with records of this host, boot and PID
namespace (so every live record is probed): a third name live processes (this
one and its parent), a third dead PIDs (a child that exited), a third ended.
Then times, interleaved, min / median / max over ``--repeats``:

* ``store+liveness``: ``DirectoryStore.list_sessions()`` then
  ``readers.sessions_with_liveness`` with the real probe (what the tool does
  before it builds its reply; the MCP layer is measured by bench/floor.py);
* ``store only``: ``DirectoryStore.list_sessions()`` (read + validate);
* ``floor``: ``os.scandir`` + read + ``json.loads`` of the same files.

Then the cost of one probe (CPU microseconds, best of 5 x 2,000 calls) of a
live process and of a PID that is gone.

Prints figures only; exits 1 if a listing disagrees with the seeded statuses.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path


def seed(directory: Path, count: int) -> dict[str, str]:
    """Write ``count`` records; return the expected status of each session id."""
    from mcp_server_heartbeat.domain.models import SessionRecord
    from mcp_server_heartbeat.host.identity import (
        read_boot_id,
        read_pid_namespace,
        read_time_namespace,
    )
    from mcp_server_heartbeat.host.probe import process_start_ticks
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    store = DirectoryStore(directory)
    store.prepare()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = datetime.now(UTC)
    live = [
        (os.getpid(), process_start_ticks(os.getpid())),
        (os.getppid(), process_start_ticks(os.getppid())),
    ]
    expected = {}
    for i in range(count):
        kind = i % 3
        pid, ticks = live[i % 2] if kind == 0 else (dead.pid, 12345)
        record = SessionRecord(
            session_id=f"s-{i:05d}",
            host=__import__("socket").gethostname(),
            pid=pid,
            pid_start_ticks=ticks,
            client_pid=pid,
            started_at=now - timedelta(seconds=30),
            last_heartbeat=now,
            last_call_at=now,
            branch=f"b{i % 7}",
            cwd="/work/repo",
            worktree="/work/repo",
            plan_id=f"plan-{i}" if i % 5 == 0 else None,
            boot_id=read_boot_id(),
            pid_namespace=read_pid_namespace(),
            time_namespace=read_time_namespace(),
            ended_at=now if kind == 2 else None,
            end_reason="done" if kind == 2 else None,
        )
        store.write_session(record)
        expected[record.session_id] = ("active", "dead", "ended")[kind]
    return expected


def floor(directory: Path) -> int:
    """The floor: scandir + read + json.loads of every record."""
    n = 0
    for entry in os.scandir(directory):
        if entry.name.endswith(".json") and not entry.name.startswith("."):
            with open(entry.path, "rb") as f:
                json.loads(f.read())
            n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from mcp_server_heartbeat.domain.liveness import Thresholds
    from mcp_server_heartbeat.host.identity import observer_here
    from mcp_server_heartbeat.host.probe import probe_process
    from mcp_server_heartbeat.session import readers
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            directory = Path(tmp) / f"d{size}"
            expected = seed(directory, size)
            store = DirectoryStore(directory)
            observer = observer_here("observer")
            thresholds = Thresholds()

            def product(store=store, observer=observer, thresholds=thresholds) -> list:
                records, _ = store.list_sessions()
                return readers.sessions_with_liveness(
                    records,
                    store.now(),
                    observer,
                    probe_process,
                    thresholds,
                    include_ended=True,
                )

            runs = {
                "store+liveness": product,
                "store only": store.list_sessions,
                "floor (scandir+read+json.loads)": lambda directory=directory: floor(directory),
            }
            for run in runs.values():
                run()  # warm the page cache
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, run in runs.items():
                    began = time.perf_counter()
                    run()
                    times[name].append((time.perf_counter() - began) * 1000)
            got = {view.session_id: view.status for view in product()}
            wrong = sum(1 for sid, status in expected.items() if got.get(sid) != status)
            failures += wrong
            print(f"{size} records (ms, min / median / max over {args.repeats}):")
            base = statistics.median(times["floor (scandir+read+json.loads)"])
            for name, values in times.items():
                med = statistics.median(values)
                print(
                    f"  {name:34s} {min(values):8.1f} / {med:8.1f} / {max(values):8.1f}"
                    f"   {med / base:5.2f}x floor"
                )
            print(f"  statuses wrong: {wrong}")
    probe_cost(probe_process)
    return 1 if failures else 0


def probe_cost(probe_process) -> None:  # type: ignore[no-untyped-def]
    """Print the CPU cost of one probe of a live process and of a gone PID."""
    from mcp_server_heartbeat.host.probe import process_start_ticks

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = os.getpid()
    cases = {"live": (me, None, process_start_ticks(me)), "gone": (gone.pid, None, 5)}
    line = []
    for name, args in cases.items():
        best = float("inf")
        for _ in range(5):
            began = time.process_time()
            for _ in range(2000):
                probe_process(*args)
            best = min(best, (time.process_time() - began) / 2000)
        line.append(f"{name} {best * 1e6:.1f} us")
    print("one probe (CPU, best of 5 x 2,000): " + ", ".join(line))


if __name__ == "__main__":
    sys.exit(main())
