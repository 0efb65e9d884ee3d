"""Server CPU per tool call over real stdio, beside the bare SDK's.

    python bench/bench_call_cpu.py [--calls 1000]

Three figures, each the CPU time (user + system, from ``/proc/<pid>/stat``) a
server process spends per call, over ``--calls`` calls after 50 to warm up:
a refused ``claim_plan`` (another server holds the plan), a ``heartbeat``, and
the floor, a bare ``echo`` tool of the SDK's ``MCPServer``
(``bench/floor_server.py``). The wall time per call and the client's own CPU
are printed beside them. Linux only (``/proc``). Prints figures; exits 1 only
when a call answers something other than expected.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor_support import InvariantError, Rpc, floor_argv, product_argv

WARM_UP = 50


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_call(server: Rpc, call: Callable[[], object], calls: int) -> tuple[float, float, float]:
    """(server CPU, wall, client CPU) per call, in milliseconds."""
    for _ in range(WARM_UP):
        call()
    cpu0, wall0, own0 = server_cpu_s(server.proc.pid), time.perf_counter(), time.process_time()
    for _ in range(calls):
        call()
    cpu1, wall1, own1 = server_cpu_s(server.proc.pid), time.perf_counter(), time.process_time()
    per = 1000 / calls
    return (cpu1 - cpu0) * per, (wall1 - wall0) * per, (own1 - own0) * per


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per figure")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-call-cpu-"))
    sessions = work / "sessions"
    holder = Rpc(product_argv(sessions, "holder"), work, "holder")
    racer = Rpc(product_argv(sessions, "racer"), work, "racer")
    floor = Rpc(floor_argv(), work, "floor")
    try:
        for server in (holder, racer, floor):
            server.initialize()
        if not holder.call("claim_plan", plan_id="held")["structuredContent"]["claimed"]:
            raise InvariantError("the holder could not claim a free plan")

        def refused() -> None:
            outcome = racer.call("claim_plan", plan_id="held")["structuredContent"]["outcome"]
            if outcome != "held_by_other":
                raise InvariantError(f"a claim of a held plan answered {outcome}")

        rows = [
            ("refused claim_plan", racer, refused),
            ("heartbeat", racer, lambda: racer.call("heartbeat", activity="bench:cpu")),
            ("floor: bare echo", floor, lambda: floor.call("echo", text="x")),
        ]
        header = f"{'call':20} {'server CPU':>12} {'wall':>10} {'client CPU':>12}"
        print(f"{header}   ({args.calls} calls each)")
        for name, server, call in rows:
            cpu, wall, own = per_call(server, call, args.calls)
            print(f"{name:20} {cpu:9.3f} ms {wall:7.3f} ms {own:9.3f} ms")
        for server in (holder, racer, floor):
            server.close()
    except InvariantError as exc:
        print(f"bench_call_cpu: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in (holder, racer, floor):
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
