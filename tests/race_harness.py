"""Race harness: N real processes claim plans through the real store; a checker
reads their logs afterwards.

One harness serves the CI race test (``tests/test_race.py``), the history-checked
race of the fault suite and the ``bench/race_history.py`` script; they differ
only in :class:`RaceConfig`.

Each worker is a separate process (``multiprocessing`` *spawn*: a fresh
interpreter, nothing shared but the directory) with its own
:class:`~mcp_server_heartbeat.session.service.SessionService` over a
:class:`~mcp_server_heartbeat.store.directory.store.DirectoryStore` of the one temp
directory, the real clock and the real process probe. Per round it claims a
plan; on a grant it

1. creates an exclusive marker ``markers/<plan>.held`` with
   ``O_CREAT | O_EXCL`` — an ``EEXIST`` means two holders at once;
2. heartbeats and checks that the claim is still its own;
3. removes the marker and releases with its fencing token.

Every step is appended to the worker's own log with a ``CLOCK_MONOTONIC`` time
(one system-wide clock on Linux, so times of different processes compare).

Two shapes:

* ``lockstep=True`` — all workers wait at a barrier, claim together, wait at a
  second barrier (so every worker has tried before anyone releases), then the
  winner releases. Each round must have exactly one winner per contended plan.
* ``lockstep=False`` — free-running: each worker loops claim/heartbeat/release
  as fast as it can (the throughput figure of ``bench/race_history.py``).

:func:`check_history` merges the logs and returns every violation of: never two
holders of one plan at once (marker and interval overlap), fencing tokens
strictly increasing per plan in grant order (so never granted twice), no
granted claim lost (each grant is released with ``outcome=released`` and no
heartbeat saw ``claim_lost``), and in lockstep exactly one winner per round and
plan.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BARRIER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RaceConfig:
    """The shape of one race (see module doc)."""

    processes: int = 8
    rounds: int = 200
    plans: int = 1
    lockstep: bool = True
    heartbeat: bool = True
    seed: int = 0
    sabotage_lock: bool = False
    """Test the test: workers skip the store's lock, so the checker must find
    double grants. Never set outside that self-test."""
    vandal: str | None = None
    """An extra process that, every millisecond while the workers run, attacks
    ``<dir>/.lock`` (the lock file of older versions, what a person deletes after
    a "stayed locked" error): ``"unlink"`` removes it, ``"symlink"`` replaces it
    with a symbolic link to ``vandal_target``, ``"dir"`` with a directory."""
    vandal_target: str | None = None
    """Where the ``"symlink"`` vandal's link points (a file outside the directory)."""


@dataclass
class RaceReport:
    """What a race did and what the checker found."""

    config: RaceConfig
    elapsed_s: float
    attempts: int
    grants: int
    releases: int
    exit_codes: list[int | None]
    violations: list[str] = field(default_factory=list)
    final_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def grants_per_s(self) -> float:
        """Granted claims per second of wall time (each with heartbeat and release)."""
        return self.grants / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def attempts_per_s(self) -> float:
        """Claim attempts (granted or refused) per second of wall time."""
        return self.attempts / self.elapsed_s if self.elapsed_s > 0 else 0.0


def plan_names(count: int) -> list[str]:
    """The plan ids of a race: ``plan-0 .. plan-<count-1>``."""
    return [f"plan-{i}" for i in range(count)]


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _worker(
    index: int, directory: str, work: str, config: RaceConfig, barrier: Any
) -> None:  # pragma: no cover - runs in the child processes
    from mcp_server_heartbeat.domain.errors import HeartbeatError
    from mcp_server_heartbeat.domain.liveness import Thresholds
    from mcp_server_heartbeat.host.identity import detect_identity
    from mcp_server_heartbeat.session.service import SessionService
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    session_id = f"racer-{index}"
    identity = detect_identity(session_id, {}, Path(work))
    store = DirectoryStore(Path(directory), lock_timeout=30.0)
    if config.sabotage_lock:
        store.lock = lambda timeout=None: contextlib.nullcontext()  # type: ignore[method-assign]
    service = SessionService(
        store,
        identity,
        Thresholds(stale_after=300.0, idle_after=600.0),
        interval=30.0,
    )
    plans = plan_names(config.plans)
    rng = random.Random(config.seed * 1000 + index)
    markers = Path(work) / "markers"
    events: list[dict[str, Any]] = []
    log_path = Path(work) / f"worker-{index}.jsonl"

    def log(**event: Any) -> None:
        events.append(event)

    try:
        service.start()
        for round_no in range(config.rounds):
            plan = plans[0] if len(plans) == 1 else rng.choice(plans)
            if config.lockstep:
                barrier.wait(BARRIER_TIMEOUT_S)
            t0 = _now_ns()
            try:
                result = service.claim(plan)
            except HeartbeatError as exc:
                if not config.sabotage_lock:
                    raise
                # With exclusion switched off, the store's own guard (a new holder needs
                # a larger token) refuses some double grants; the others must be caught.
                log(e="deny", r=round_no, p=plan, o=f"store refused: {exc}", t0=t0, t1=_now_ns())
                if config.lockstep:
                    barrier.wait(BARRIER_TIMEOUT_S)
                continue
            t1 = _now_ns()
            if not result.claimed:
                log(e="deny", r=round_no, p=plan, o=result.outcome, t0=t0, t1=t1)
                if config.lockstep:
                    barrier.wait(BARRIER_TIMEOUT_S)
                continue
            token = result.fencing_token
            log(e="grant", r=round_no, p=plan, o=result.outcome, tok=token, t0=t0, t1=t1)
            marker = markers / f"{plan}.held"
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                log(e="violation", r=round_no, p=plan, what="marker exists (EEXIST)", tok=token)
                marker = None
            else:
                os.write(fd, f"{index} {token}\n".encode())
                os.close(fd)
            if config.heartbeat:
                beat = service.heartbeat(activity=f"race:{round_no}")
                if beat.claim_lost is not None or beat.session.plan_id != plan:
                    log(e="lost", r=round_no, p=plan, tok=token, t=_now_ns())
            if config.lockstep:
                barrier.wait(BARRIER_TIMEOUT_S)
            if marker is not None:
                os.unlink(marker)
            t2 = _now_ns()
            released = service.release(plan, reason="race", fencing_token=token)
            t3 = _now_ns()
            log(e="release", r=round_no, p=plan, o=released.outcome, tok=token, t0=t2, t1=t3)
        service.end("race done")
    except BaseException as exc:
        log(e="error", what=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            barrier.abort()
        raise
    finally:
        with log_path.open("w") as out:
            for event in events:
                out.write(json.dumps(event) + "\n")


def _vandal(
    directory: str, mode: str, target: str | None, stop: Any
) -> None:  # pragma: no cover - runs in a child process
    lock = Path(directory) / ".lock"
    while not stop.is_set():
        with contextlib.suppress(OSError):
            if lock.is_dir() and not lock.is_symlink():
                lock.rmdir()
            else:
                lock.unlink(missing_ok=True)
            if mode == "symlink":
                lock.symlink_to(target or "/nonexistent")
            elif mode == "dir":
                lock.mkdir()
        time.sleep(0.001)


def run_race(
    directory: Path, work: Path, config: RaceConfig, timeout_s: float = 600.0
) -> RaceReport:
    """Run one race over the heartbeat directory ``directory``; logs and markers
    go to ``work``. Returns the report with the checker's violations."""
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    store = DirectoryStore(directory)
    store.prepare()
    (work / "markers").mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(config.processes)
    workers = [
        ctx.Process(target=_worker, args=(i, str(directory), str(work), config, barrier))
        for i in range(config.processes)
    ]
    stop = ctx.Event()
    vandal = None
    if config.vandal is not None:
        vandal = ctx.Process(
            target=_vandal, args=(str(directory), config.vandal, config.vandal_target, stop)
        )
        vandal.start()
    started = time.monotonic()
    for worker in workers:
        worker.start()
    deadline = started + timeout_s
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - started
    stop.set()
    if vandal is not None:
        vandal.join(10)
        if vandal.is_alive():
            vandal.kill()
            vandal.join()
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join()
    events = read_logs(work, config.processes)
    violations = check_history(events, config)
    codes = [w.exitcode for w in workers]
    violations += [f"worker {i} exited with {c}" for i, c in enumerate(codes) if c != 0]
    final = {}
    for plan in plan_names(config.plans):
        ledger = store.read_claim(plan)
        if ledger is not None:
            final[plan] = ledger.fencing_token
            if ledger.holder is not None:
                violations.append(f"{plan}: still held by {ledger.holder} after the race")
    granted_tokens: dict[str, int] = {}
    for event in events:
        if event["e"] == "grant":
            granted_tokens[event["p"]] = max(granted_tokens.get(event["p"], 0), event["tok"])
    for plan, top in granted_tokens.items():
        if final.get(plan) != top:
            violations.append(f"{plan}: ledger token {final.get(plan)} != last granted {top}")
    return RaceReport(
        config=config,
        elapsed_s=elapsed,
        attempts=sum(1 for e in events if e["e"] in ("grant", "deny")),
        grants=sum(1 for e in events if e["e"] == "grant"),
        releases=sum(1 for e in events if e["e"] == "release"),
        exit_codes=codes,
        violations=violations,
        final_tokens=final,
    )


def read_logs(work: Path, processes: int) -> list[dict[str, Any]]:
    """Every worker's events, each tagged with ``w`` (the worker index)."""
    events: list[dict[str, Any]] = []
    for index in range(processes):
        path = work / f"worker-{index}.jsonl"
        if not path.exists():
            events.append({"e": "error", "w": index, "what": "no log written"})
            continue
        for line in path.read_text().splitlines():
            event = json.loads(line)
            event["w"] = index
            events.append(event)
    return events


def check_history(events: list[dict[str, Any]], config: RaceConfig) -> list[str]:
    """Check merged worker logs; returns one line per violation (empty: all good).

    Checked per plan: tokens strictly increase in the order claims were granted
    (by monotonic time); hold intervals ``[grant returned, release called]``
    never overlap (each lies inside the true hold, so an overlap is proof of
    two holders); every grant was released with ``released`` and never
    reported lost; in lockstep, exactly one winner per round and plan.
    """
    violations: list[str] = []
    for event in events:
        if event["e"] in ("violation", "error", "lost"):
            violations.append(f"worker {event['w']}: {event['e']}: {event}")
        if event["e"] == "deny" and event["o"] != "held_by_other":
            violations.append(f"worker {event['w']}: unexpected refusal {event}")
    releases = {(e["w"], e["p"], e["tok"]): e for e in events if e["e"] == "release"}
    grants_by_plan: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event["e"] == "grant":
            grants_by_plan.setdefault(event["p"], []).append(event)
    for plan, grants in grants_by_plan.items():
        grants.sort(key=lambda e: e["t1"])
        tokens = [grant["tok"] for grant in grants]
        duplicates = len(tokens) - len(set(tokens))
        if duplicates:
            violations.append(
                f"{plan}: {duplicates} duplicate fencing tokens among {len(tokens)} grants "
                f"({len(set(tokens))} distinct)"
            )
        for before, after in itertools.pairwise(grants):
            if after["tok"] <= before["tok"]:
                violations.append(
                    f"{plan}: token {after['tok']} (worker {after['w']}) granted after "
                    f"token {before['tok']} (worker {before['w']}): not increasing"
                )
        intervals = []
        for grant in grants:
            release = releases.get((grant["w"], plan, grant["tok"]))
            if release is None:
                violations.append(f"{plan}: grant of token {grant['tok']} never released")
                continue
            if release["o"] != "released":
                violations.append(
                    f"{plan}: token {grant['tok']} lost: release answered {release['o']}"
                )
            intervals.append((grant["t1"], release["t0"], grant["w"], grant["tok"]))
        intervals.sort()
        for (_, e1, w1, k1), (s2, _, w2, k2) in itertools.pairwise(intervals):
            if s2 <= e1:
                violations.append(
                    f"{plan}: worker {w2} (token {k2}) held from {s2} while worker {w1} "
                    f"(token {k1}) held until {e1}: two holders at once"
                )
    if config.lockstep:
        attempted: dict[tuple[int, str], int] = {}
        winners: dict[tuple[int, str], int] = {}
        for event in events:
            if event["e"] in ("grant", "deny"):
                key = (event["r"], event["p"])
                attempted[key] = attempted.get(key, 0) + 1
                if event["e"] == "grant":
                    winners[key] = winners.get(key, 0) + 1
        for key in sorted(attempted):
            if winners.get(key, 0) != 1:
                violations.append(
                    f"round {key[0]} plan {key[1]}: {winners.get(key, 0)} winners "
                    f"among {attempted[key]} claimants (expected exactly 1)"
                )
        expected = config.rounds * config.processes
        total = sum(attempted.values())
        if total != expected:
            violations.append(f"{total} claim attempts logged, expected {expected}")
    return violations


__all__ = ["RaceConfig", "RaceReport", "check_history", "plan_names", "read_logs", "run_race"]
