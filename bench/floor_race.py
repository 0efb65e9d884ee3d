"""The contended-claims row of ``bench/floor.py``: N real servers (the console
script over stdio, one heartbeat directory) race for one plan.

Each racer is one server process driven by one client thread, free-running
after a common start: ``claim_plan``; on a grant it creates the exclusive
marker ``markers/<plan>.held`` (``O_CREAT | O_EXCL``: ``EEXIST`` means two
holders at once), removes it and calls ``release`` with its fencing token.
Every step is logged with a ``CLOCK_MONOTONIC`` time, and the logs are judged
by the race suite's own checker (``tests/race_harness.check_history``: tokens
strictly increasing per plan in grant order, never two holders, every grant
released with ``released``). Afterwards one more claim must be ``claimed``
with the token after the last one granted (the ledger kept the last token and
no holder), and every server must exit 0 on stdin EOF.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from floor_support import CONSOLE_SCRIPT, InvariantError, Rpc, product_argv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from race_harness import RaceConfig, check_history

START_TIMEOUT_S = 120.0


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _racer(
    index: int,
    server: Rpc,
    plan: str,
    attempts: int,
    markers: Path,
    start: threading.Barrier,
    events: list[dict[str, Any]],
) -> None:
    try:
        start.wait(START_TIMEOUT_S)
        events.append({"e": "start", "t": _now_ns()})
        for round_no in range(attempts):
            t0 = _now_ns()
            claim = server.call("claim_plan", plan_id=plan)["structuredContent"]
            t1 = _now_ns()
            if not claim["claimed"]:
                events.append({"e": "deny", "r": round_no, "p": plan, "o": claim["outcome"]})
                continue
            token = claim["fencing_token"]
            events.append(
                {"e": "grant", "r": round_no, "p": plan, "o": claim["outcome"], "tok": token,
                 "t0": t0, "t1": t1}
            )  # fmt: skip
            marker = markers / f"{plan}.held"
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                events.append(
                    {"e": "violation", "r": round_no, "p": plan, "tok": token,
                     "what": "marker exists (EEXIST): two holders"}
                )  # fmt: skip
            else:
                os.write(fd, f"{index} {token}\n".encode())
                os.close(fd)
                os.unlink(marker)
            t2 = _now_ns()
            done = server.call("release", plan_id=plan, reason="race", fencing_token=token)
            events.append(
                {"e": "release", "r": round_no, "p": plan, "tok": token,
                 "o": done["structuredContent"]["outcome"], "t0": t2, "t1": _now_ns()}
            )  # fmt: skip
        events.append({"e": "end", "t": _now_ns()})
    except BaseException as exc:  # every failure is reported, none hidden
        events.append({"e": "error", "what": f"{type(exc).__name__}: {exc}"})
        start.abort()


def start_racers(work: Path, racers: int, console: str = CONSOLE_SCRIPT) -> list[Rpc]:
    """``racers`` initialized servers (the console script ``console``) on the
    heartbeat directory ``work/sessions`` (started together; initialized one
    after the other)."""
    directory = work / "sessions"
    work.mkdir(parents=True, exist_ok=True)
    servers = [
        Rpc(product_argv(directory, f"racer-{i}", console), work, f"racer-{i}")
        for i in range(racers)
    ]
    try:
        for server in servers:
            server.initialize()
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


def stop_racers(servers: list[Rpc]) -> list[str]:
    """Close every server's stdin at once, then require each to exit 0."""
    violations = []
    for server in servers:
        server.proc.stdin.close()  # type: ignore[union-attr]
    for server in servers:
        try:
            server.close()
        except InvariantError as exc:
            violations.append(str(exc))
    return violations


def race(work: Path, servers: list[Rpc], plan: str, attempts: int) -> dict[str, Any]:
    """One race of ``servers`` for ``plan``, ``attempts`` claims each; returns
    ``granted_per_s``, ``grants``, ``final_token`` and ``violations`` (empty:
    every invariant held)."""
    racers = len(servers)
    markers = work / f"markers-{plan}"
    markers.mkdir(parents=True)
    violations: list[str] = []
    logs: list[list[dict[str, Any]]] = [[] for _ in servers]
    start = threading.Barrier(racers)
    threads = [
        threading.Thread(
            target=_racer, args=(i, server, plan, attempts, markers, start, logs[i]), daemon=True
        )
        for i, server in enumerate(servers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = [dict(event, w=i) for i, log in enumerate(logs) for event in log]
    violations += check_history(
        [e for e in events if e["e"] not in ("start", "end")],
        RaceConfig(processes=racers, rounds=attempts, plans=1, lockstep=False),
    )
    tokens = [e["tok"] for e in events if e["e"] == "grant"]
    starts = [e["t"] for e in events if e["e"] == "start"]
    ends = [e["t"] for e in events if e["e"] == "end"]
    elapsed = (max(ends) - min(starts)) / 1e9 if len(ends) == racers else float("nan")
    final = None
    if not violations:
        last = servers[0].call("claim_plan", plan_id=plan)["structuredContent"]
        final = last["fencing_token"]
        expected = max(tokens, default=0) + 1
        if last["outcome"] != "claimed" or final != expected:
            violations.append(
                f"after the race a claim answered {last['outcome']} with token {final}; "
                f"expected claimed with {expected} (the token after the last grant)"
            )
        servers[0].call("release", plan_id=plan, fencing_token=final)
    return {
        "granted_per_s": len(tokens) / elapsed if elapsed > 0 else 0.0,
        "grants": len(tokens),
        "attempts": sum(1 for e in events if e["e"] in ("grant", "deny")),
        "elapsed_s": elapsed,
        "final_token": final,
        "violations": violations,
    }
