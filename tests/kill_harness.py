"""kill -9 harness: a victim process loops claim/heartbeat/release; the parent
SIGKILLs it at random moments and checks what it left.

Shared by ``tests/test_fault_kill9.py`` (CI size) and ``bench/kill9.py``.

Each victim is a real process (multiprocessing *forkserver*: forked from a
clean server with the package preloaded, so hundreds of kills stay fast) with
its own session id, real pid and start time, the real clock and the real
psutil probe. In failpoint mode the victim also SIGKILLs itself, at random,
between the temp file's write and its rename (``store.atomic.FAILPOINTS``).

After every kill the parent checks:

* every visible file parses: ``list_sessions`` reports nothing unreadable and
  every claim ledger loads;
* no temp file is visible: ``list_sessions`` names only real sessions;
* the next claimant gets the plan: ``taken_over`` by ``proof_of_death`` when the
  victim still held it, ``claimed`` when it was free; never refused;
* tokens stay monotonic: the claimant's token is above every token the ledger
  or any victim ever reported.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLAN = "plan-k"


@dataclass
class KillReport:
    """Figures of one kill run."""

    kills: int = 0
    failpoint_kills: int = 0
    victim_held_at_kill: int = 0
    takeovers_by_proof_of_death: int = 0
    claims_of_free_plan: int = 0
    victim_grants: int = 0
    leftover_temp_files: int = 0
    last_token: int = 0
    elapsed_s: float = 0.0
    violations: list[str] = field(default_factory=list)


def _identity(session_id: str, cwd: str) -> Any:
    """This process's identity, as the server reads it."""
    from mcp_server_heartbeat.host.identity import detect_identity

    return detect_identity(session_id, {}, Path(cwd))


def _victim(
    directory: str, session_id: str, token_log: str, failpoint_p: float, seed: int
) -> None:  # pragma: no cover - runs in the victim, which is killed
    from mcp_server_heartbeat.domain.liveness import Thresholds
    from mcp_server_heartbeat.session.service import SessionService
    from mcp_server_heartbeat.store.directory import atomic
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    rng = random.Random(seed)
    if failpoint_p > 0:

        def die_before_rename(_target: Path) -> None:
            if rng.random() < failpoint_p:
                os.kill(os.getpid(), signal.SIGKILL)

        atomic.FAILPOINTS["rename"] = die_before_rename
    service = SessionService(
        DirectoryStore(Path(directory)),
        _identity(session_id, directory),
        Thresholds(stale_after=300.0, idle_after=600.0),
        interval=30.0,
    )
    log = os.open(token_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    service.start()
    Path(token_log + ".ready").touch()  # the kill window starts now, whatever the load
    while True:
        result = service.claim(PLAN)
        if result.claimed:
            os.write(log, f"{result.fencing_token}\n".encode())
            service.heartbeat(activity="kill9:holding")
            service.release(PLAN, fencing_token=result.fencing_token)
        else:
            service.beat()


def _wait_until_ready(marker: Path, victim: Any, timeout_s: float = 30.0) -> None:
    """Wait until the victim has started its session (it creates ``marker``), so the
    random kill delay falls in its claim loop and not in a start slowed by load."""
    deadline = time.monotonic() + timeout_s
    while not marker.exists() and victim.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)


def run_kills(
    directory: Path,
    work: Path,
    kills: int,
    failpoint_every: int = 2,
    failpoint_p: float = 0.25,
    max_delay_s: float = 0.04,
    seed: int = 0,
) -> KillReport:
    """SIGKILL ``kills`` victims at random moments; every ``failpoint_every``-th
    victim (0: none) also dies at the write/rename failpoint with probability
    ``failpoint_p`` per write. Returns figures and violations."""
    from mcp_server_heartbeat.domain.liveness import Thresholds
    from mcp_server_heartbeat.session.service import SessionService
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    store = DirectoryStore(directory)
    store.prepare()
    work.mkdir(parents=True, exist_ok=True)
    claimant = SessionService(
        store, _identity("claimant", str(work)), Thresholds(stale_after=300.0), interval=30.0
    )
    claimant.start()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mcp_server_heartbeat.session.service", "kill_harness"])
    rng = random.Random(seed)
    report = KillReport()
    top_token = 0
    known = {"claimant"}
    started = time.monotonic()
    for n in range(kills):
        session_id = f"victim-{n}"
        known.add(session_id)
        token_log = work / f"{session_id}.tokens"
        with_failpoint = failpoint_every > 0 and n % failpoint_every == 1
        victim = ctx.Process(
            target=_victim,
            args=(
                str(directory),
                session_id,
                str(token_log),
                failpoint_p if with_failpoint else 0.0,
                seed * 100_000 + n,
            ),
        )
        victim.start()
        _wait_until_ready(Path(f"{token_log}.ready"), victim)
        time.sleep(rng.uniform(0.0, max_delay_s))
        victim.kill()  # SIGKILL (a no-op if it already killed itself at the failpoint)
        victim.join()
        report.kills += 1
        if victim.exitcode != -signal.SIGKILL:
            report.violations.append(f"{session_id} exited with {victim.exitcode}, not SIGKILL")
        if with_failpoint:
            report.failpoint_kills += 1
        tokens = _read_tokens(token_log)
        report.victim_grants += len(tokens)
        if any(b <= a for a, b in itertools.pairwise(tokens)):
            report.violations.append(f"{session_id}: tokens not increasing: {tokens}")
        if tokens and tokens[0] <= top_token:
            report.violations.append(
                f"{session_id}: token {tokens[0]} not above the previous top {top_token}"
            )
        top_token = max([top_token, *tokens])
        report.violations += _check_files(store, known, n)
        ledger = store.read_claim(PLAN)
        if ledger is not None:
            if ledger.fencing_token < top_token:
                report.violations.append(
                    f"after kill {n}: ledger token {ledger.fencing_token} < granted {top_token}"
                )
            top_token = max(top_token, ledger.fencing_token)
        held_by_victim = ledger is not None and ledger.holder == session_id
        result = claimant.claim(PLAN)
        if held_by_victim:
            report.victim_held_at_kill += 1
            if result.outcome == "taken_over" and result.takeover_reason == "proof_of_death":
                report.takeovers_by_proof_of_death += 1
            else:
                report.violations.append(
                    f"after kill {n}: victim held the plan, claimant got {result.outcome} "
                    f"({result.takeover_reason}): {result.message}"
                )
        elif ledger is not None and ledger.holder is not None:
            report.violations.append(f"after kill {n}: plan held by unexpected {ledger.holder}")
        elif result.outcome == "claimed":
            report.claims_of_free_plan += 1
        else:
            report.violations.append(f"after kill {n}: free plan, claimant got {result.outcome}")
        if result.claimed:
            token = result.fencing_token or 0
            if token <= top_token:
                report.violations.append(
                    f"after kill {n}: claimant token {token} not above {top_token}"
                )
            top_token = max(top_token, token)
            released = claimant.release(PLAN, fencing_token=token)
            if released.outcome != "released":
                report.violations.append(f"after kill {n}: claimant release {released.outcome}")
    report.elapsed_s = time.monotonic() - started
    report.last_token = top_token
    report.leftover_temp_files = sum(
        1 for p in [*directory.iterdir(), *store.claims_dir.iterdir()] if p.name.endswith(".tmp")
    )
    claimant.end("kill9 done")
    return report


def _read_tokens(path: Path) -> list[int]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [int(line) for line in lines[:-1] if line.strip()]  # the last piece may be torn


def _check_files(store: Any, known: set[str], n: int) -> list[str]:
    problems: list[str] = []
    records, unreadable = store.list_sessions()
    for item in unreadable:
        problems.append(f"after kill {n}: unreadable {item.file}: {item.reason}")
    for record in records:
        if record.session_id not in known:
            problems.append(f"after kill {n}: unexpected session {record.session_id!r} listed")
    for path in store.claims_dir.iterdir():
        if path.name.startswith(".") or not path.name.endswith(".json"):
            continue
        try:
            store.read_claim(path.name[: -len(".json")])
        except Exception as exc:
            problems.append(f"after kill {n}: claim ledger {path.name}: {exc}")
    return problems


__all__ = ["PLAN", "KillReport", "run_kills"]
