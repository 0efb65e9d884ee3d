"""Figures for the stdio server: start-up, tool latency, exit time.

Runs the installed console script as a real subprocess, speaks JSON-RPC over
its stdio, and prints figures (milliseconds). Not a test: nothing is asserted.

    python bench/bench_server.py [--calls 200]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from stdio_client import StdioServer


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    median = statistics.median(ordered)
    return f"p50 {median:6.2f} ms   p95 {p95:6.2f} ms   max {ordered[-1]:6.2f} ms"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per tool (default 200)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-server-"))

    starts = []
    for i in range(5):
        began = time.perf_counter()
        server = StdioServer(root, "--session-id", f"start-{i}")
        server.initialize()
        starts.append((time.perf_counter() - began) * 1000)
        server.close_stdin()
        server.wait()
        server.stop()
    print(f"start-up to initialize reply  {percentiles(starts)}  (n=5)")

    server = StdioServer(root, "--session-id", "bench")
    server.initialize()
    other = StdioServer(root, "--session-id", "other")
    other.initialize()
    other.call("claim_plan", plan_id="held")
    plans = [f"p{i}" for i in range(args.calls)]
    runs = {
        "heartbeat": lambda i: server.call("heartbeat", activity=f"step{i}"),
        "list_sessions": lambda i: server.call("list_sessions"),
        "session_info": lambda i: server.call("session_info"),
        "claim_plan (free)": lambda i: server.call("claim_plan", plan_id=plans[i]),
        "release": lambda i: server.call("release"),
        "claim_plan (held_by_other)": lambda i: server.call("claim_plan", plan_id="held"),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(args.calls):
        for name, run in runs.items():
            samples[name].append(timed(lambda run=run, i=i: run(i)))
    for name, values in samples.items():
        print(f"{name:28s}  {percentiles(values)}  (n={len(values)})")

    for label, stop in (
        ("exit after stdin EOF", lambda s: s.close_stdin()),
        ("exit after SIGTERM", lambda s: s.proc.send_signal(signal.SIGTERM)),
    ):
        times = []
        for i in range(5):
            s = StdioServer(root, "--session-id", f"exit-{label[11:15]}-{i}")
            s.initialize()
            s.call("claim_plan", plan_id=f"exit-{i}")
            began = time.perf_counter()
            stop(s)
            code = s.wait()
            times.append((time.perf_counter() - began) * 1000)
            s.stop()
            assert code == 0, code
        print(f"{label:28s}  {percentiles(times)}  (n=5, claim held)")
    for s in (server, other):
        s.close_stdin()
        s.wait()
        s.stop()


if __name__ == "__main__":
    main()
