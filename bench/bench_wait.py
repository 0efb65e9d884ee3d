"""Figures for wait_for_plan: wake-up latency after a release, and the CPU an idle wait uses.

Usage: python bench/bench_wait.py [--dsn URL] [--rounds 20] [--idle 5]
                                  [--backends directory,postgres]

Real stdio servers (the console script), one per session, per backend:

1. Wake-up latency. A holder claims plan ``bench``; a waiter calls
   ``wait_for_plan`` and is queued; the holder releases. Two figures per
   round (milliseconds): ``events``, from the ``claim_released`` event to the
   waiter's ``claim_granted`` event in the event log (the store's clock: what
   "granted within a second of the release" means), and ``client``, from the
   release's answer reaching the holder's client to the wait's answer reaching
   the waiter's client. The waiter then releases; ``--rounds`` rounds.
2. Idle cost. A waiter waits on a held plan for ``--idle`` seconds; the CPU
   time (user+system) its server process used meanwhile, as a share of one
   core (psutil), beside an idle server that is not waiting.

Prints figures only (min / median / p95 / max); exit code 1 when a round did
not grant the plan. ``--dsn`` defaults to ``HEARTBEAT_TEST_DSN``; without one
the PostgreSQL backend is skipped. The PostgreSQL run uses a throwaway schema
``hb_bench_<random>`` and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from mcp_server_heartbeat.store.directory import DirectoryStore  # noqa: E402
from stdio_client import StdioServer, clean_env, wait_until  # noqa: E402

FAST = ("--interval", "0.5", "--stale-after", "5")
PLAN = "bench"


def _figures(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"min {ordered[0]:7.1f}  median {statistics.median(ordered):7.1f}  "
        f"p95 {p95:7.1f}  max {ordered[-1]:7.1f}"
    )


class Setup:
    """Servers of one backend in a throwaway project, and a store to read events."""

    def __init__(self, kind: str, dsn: str | None) -> None:
        self.kind = kind
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-wait-")
        self.root = Path(self.tmp.name)
        self.env: dict[str, str] = {}
        self.schema: str | None = None
        if kind == "directory":
            self.store: Any = DirectoryStore(self.root / ".ahrena/workflow/sessions")
        else:
            from mcp_server_heartbeat.store.postgres import PostgresStore

            assert dsn is not None
            self.schema = f"hb_bench_{uuid.uuid4().hex[:10]}"
            project = "bench-wait"
            self.env = {
                "HEARTBEAT_STORE": dsn,
                "HEARTBEAT_PROJECT": project,
                "HEARTBEAT_SCHEMA": self.schema,
            }
            self.store = PostgresStore(dsn, project, schema=self.schema)
            self.store.prepare()
        self.servers: list[StdioServer] = []

    def server(self, session_id: str) -> StdioServer:
        env = clean_env(self.root, **self.env)
        server = StdioServer(self.root, "--session-id", session_id, *FAST, env=env)
        self.servers.append(server)
        server.initialize()
        return server

    def waiters(self) -> list[str]:
        ledger = self.store.read_claim(PLAN)
        return [] if ledger is None else [w.session_id for w in ledger.waiters]

    def close(self, dsn: str | None) -> None:
        for server in self.servers:
            server.stop()
        if self.schema is not None and dsn is not None:
            import psycopg
            from psycopg import sql

            self.store.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
                )
        self.tmp.cleanup()


def _send_wait(server: StdioServer, request_id: int, timeout_s: float) -> None:
    server.send(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {
                "name": "wait_for_plan",
                "arguments": {"plan_id": PLAN, "timeout_s": timeout_s},
            },
        }
    )


def latency(setup: Setup, rounds: int) -> tuple[list[float], list[float], int]:
    holder, waiter = setup.server("holder"), setup.server("waiter")
    by_events: list[float] = []
    by_client: list[float] = []
    failures = 0
    for n in range(rounds):
        holder.call("claim_plan", plan_id=PLAN)
        request_id = 10_000 + n
        _send_wait(waiter, request_id, 60)
        wait_until(lambda: setup.waiters() == ["waiter"], what="the waiter queued")
        time.sleep(0.3)  # let the waiter settle into its wait
        holder.call("release", plan_id=PLAN, reason="bench")
        released = time.monotonic()
        answer = waiter.receive(request_id, timeout=30)["result"]
        by_client.append((time.monotonic() - released) * 1000)
        if answer.get("structuredContent", {}).get("outcome") != "claimed":
            failures += 1
        events = [e for e in setup.store.plan_history(PLAN, 2)]
        if [e.event for e in events] == ["claim_released", "claim_granted"]:
            by_events.append((events[1].at - events[0].at).total_seconds() * 1000)
        else:
            failures += 1
        waiter.call("release", plan_id=PLAN, reason="bench")
    return by_events, by_client, failures


def idle_cost(setup: Setup, seconds: float) -> tuple[float, float]:
    holder, waiter, idle = (
        setup.server("idle-holder"),
        setup.server("idle-waiter"),
        setup.server("idle"),
    )
    holder.call("claim_plan", plan_id=PLAN + "-idle")
    _send_wait(waiter, 99_999, seconds + 30)
    shares = []
    time.sleep(1.0)  # the waiter is queued and waiting
    procs = [psutil.Process(s.pid) for s in (waiter, idle)]
    before = [p.cpu_times() for p in procs]
    time.sleep(seconds)
    after = [p.cpu_times() for p in procs]
    for b, a in zip(before, after, strict=True):
        shares.append(100 * ((a.user - b.user) + (a.system - b.system)) / seconds)
    return shares[0], shares[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("HEARTBEAT_TEST_DSN"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--backends", default="directory,postgres")
    args = parser.parse_args()
    failed = 0
    for kind in args.backends.split(","):
        if kind == "postgres" and not args.dsn:
            print("postgres: skipped (no --dsn, no HEARTBEAT_TEST_DSN)")
            continue
        setup = Setup(kind, args.dsn)
        try:
            by_events, by_client, failures = latency(setup, args.rounds)
            waiting, idle = idle_cost(setup, args.idle)
        finally:
            setup.close(args.dsn)
        failed += failures
        print(f"{kind}: wake-up after release, {args.rounds} rounds, ms")
        print(f"  events (release -> grant in the log)  {_figures(by_events)}")
        print(f"  client (release answer -> wait answer) {_figures(by_client)}")
        print(f"  over 1000 ms: {sum(v >= 1000 for v in by_events)}; failed rounds: {failures}")
        print(
            f"{kind}: CPU over {args.idle:.0f} s, % of one core: waiting server {waiting:.1f}, "
            f"idle server {idle:.1f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
