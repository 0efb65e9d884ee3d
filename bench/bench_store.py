"""Figures for the stores: claim+release latency and contended claims/s,
PostgreSQL beside the heartbeat directory and beside a by-hand SQL floor.

Usage: python bench/bench_store.py [--dsn URL] [--iterations 300] [--repeats 5]
                                   [--processes 8] [--rounds 300]

1. Latency. One :class:`SessionService` per store, as the server builds it,
   times ``service.claim(plan)`` then ``service.release(plan)`` (milliseconds,
   ``--iterations`` per batch). Beside it, the floor: the same work as SQL by
   hand with psycopg on one open connection, one transaction ``SELECT ... FOR
   UPDATE`` of the plan row, ``UPDATE`` of its token counter, ``INSERT`` of the
   lease, then a release transaction ``UPDATE`` of the lease. Batches of the
   three are interleaved (order rotated each repeat) so load on the machine
   hits them alike; each figure is min / median / max over ``--repeats``.
2. Contention. ``--processes`` real processes (spawned interpreters, each its
   own service and store) race on ONE plan, free-running, ``--rounds`` claim
   attempts each; a grant is followed by an exclusive marker file
   (``O_EXCL``), then a release with its fencing token. The per-process logs
   are checked by ``tests/race_harness.check_history`` (tokens strictly
   increasing in grant order, hold intervals never overlapping, every grant
   released) and the final state is read independently (PostgreSQL: straight
   from the tables with psycopg; directory: the plan's ledger): the plan's
   counter equals the last granted token, no live lease is left, and every
   granted token has exactly one lease row.

Prints figures only; exit code 1 when an invariant was violated (a racing
process that crashed counts as one), never for slowness; 2 when the store
failed (e.g. the server restarting): outside the race no figures are printed;
inside it the racers that met the outage stop, and only the safety invariants
(tokens increasing, never two holders) still judge the run.

Needs the ``postgres`` extra and a server where the user may create
a schema: the run creates a throwaway schema ``hb_bench_<random>`` and drops
it at the end. ``--dsn`` defaults to ``HEARTBEAT_TEST_DSN``, else
postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from race_harness import RaceConfig, check_history, read_logs

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PROJECT = "bench-project"
FLOOR_PROJECT = "bench-floor"
BARRIER_TIMEOUT_S = 120.0
SAFETY_MARKS = ("two holders", "not increasing", "duplicate fencing tokens", "EEXIST")
"""Violations that stay violations even when the store failed mid-race."""


# -- building a service over a store ----------------------------------------------------


def open_store(spec: dict[str, str]) -> Any:
    """A store from ``spec``: ``{"kind": "postgres", "dsn", "schema"}`` or
    ``{"kind": "directory", "path"}``."""
    if spec["kind"] == "postgres":
        from mcp_server_heartbeat.store.postgres import PostgresStore

        return PostgresStore(spec["dsn"], PROJECT, schema=spec["schema"], lock_timeout=30.0)
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    return DirectoryStore(Path(spec["path"]), lock_timeout=30.0)


def make_service(store: Any, session_id: str, work: Path) -> Any:
    """A started SessionService over ``store`` with the real clock and probe."""
    from mcp_server_heartbeat.domain.liveness import Thresholds
    from mcp_server_heartbeat.host.identity import detect_identity
    from mcp_server_heartbeat.session.service import SessionService

    identity = detect_identity(session_id, {}, work)
    service = SessionService(
        store, identity, Thresholds(stale_after=300.0, idle_after=600.0), interval=30.0
    )
    service.start()
    return service


# -- latency ------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, nearest rank below."""
    ordered = sorted(samples)
    return ordered[int(q * (len(ordered) - 1))]


def timed_batch(action: Callable[[int], None], iterations: int) -> list[float]:
    """Milliseconds of ``action(i)`` for i in range(iterations)."""
    samples = []
    for i in range(iterations):
        began = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def service_round(service: Any, plan: str) -> Callable[[int], None]:
    """claim then release ``plan`` through ``service``; raises on a refusal."""

    def run(_: int) -> None:
        result = service.claim(plan)
        if not result.claimed:
            raise RuntimeError(f"claim of {plan} refused: {result.outcome}")
        released = service.release(plan)
        if released.outcome != "released":
            raise RuntimeError(f"release of {plan} answered {released.outcome}")

    return run


def floor_round(conn: Any, schema: str, plan: str) -> Callable[[int], None]:
    """The same claim and release as SQL by hand on one connection (the floor)."""
    from psycopg import sql

    s = sql.Identifier(schema)
    lock = sql.SQL(
        "SELECT fencing_token FROM {s}.plans WHERE project = %s AND plan_id = %s FOR UPDATE"
    ).format(s=s)
    bump = sql.SQL(
        "UPDATE {s}.plans SET fencing_token = fencing_token + 1 "
        "WHERE project = %s AND plan_id = %s RETURNING fencing_token"
    ).format(s=s)
    lease = sql.SQL(
        "INSERT INTO {s}.claims (project, plan_id, fencing_token, holder, live, claimed_at, "
        "record) VALUES (%s, %s, %s, %s, true, clock_timestamp(), '{{}}'::jsonb)"
    ).format(s=s)
    release = sql.SQL(
        "UPDATE {s}.claims SET live = false, released_at = clock_timestamp(), "
        "release_reason = 'released' WHERE project = %s AND plan_id = %s "
        "AND fencing_token = %s AND live"
    ).format(s=s)
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.plans (project, plan_id, fencing_token) VALUES (%s, %s, 0) "
            "ON CONFLICT DO NOTHING"
        ).format(s=s),
        [FLOOR_PROJECT, plan],
    )

    def run(_: int) -> None:
        with conn.transaction():
            conn.execute(lock, [FLOOR_PROJECT, plan]).fetchone()
            (token,) = conn.execute(bump, [FLOOR_PROJECT, plan]).fetchone()
            conn.execute(lease, [FLOOR_PROJECT, plan, token, "floor"])
        with conn.transaction():
            if conn.execute(release, [FLOOR_PROJECT, plan, token]).rowcount != 1:
                raise RuntimeError(f"floor release of token {token} changed no row")

    return run


def measure_latency(
    runs: dict[str, Callable[[int], None]], iterations: int, repeats: int
) -> dict[str, dict[str, list[float]]]:
    """Per run name: ``{"p50": [...], "p99": [...]}``, one value per repeat."""
    names = list(runs)
    figures: dict[str, dict[str, list[float]]] = {n: {"p50": [], "p99": []} for n in names}
    for name in names:  # warm-up: connections, pools, imports, first pages
        timed_batch(runs[name], max(5, iterations // 10))
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            samples = timed_batch(runs[name], iterations)
            figures[name]["p50"].append(percentile(samples, 0.50))
            figures[name]["p99"].append(percentile(samples, 0.99))
    return figures


def spread(values: list[float]) -> str:
    """``min / median / max`` of ``values``."""
    return f"{min(values):6.2f} / {statistics.median(values):6.2f} / {max(values):6.2f}"


# -- contention ---------------------------------------------------------------------------


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _racer(
    index: int, spec: dict[str, str], work: str, rounds: int, plan: str, barrier: Any
) -> None:  # runs in a spawned child process
    from mcp_server_heartbeat.domain.errors import StoreError

    events: list[dict[str, Any]] = []
    log_path = Path(work) / f"worker-{index}.jsonl"
    markers = Path(work) / "markers"
    store = None
    try:
        store = open_store(spec)
        service = make_service(store, f"racer-{index}", Path(work))
        service.claim(f"warm-{index}")  # connections and first pages before the start
        service.release(f"warm-{index}")
        barrier.wait(BARRIER_TIMEOUT_S)
        events.append({"e": "start", "t": _now_ns()})
        for round_no in range(rounds):
            t0 = _now_ns()
            result = service.claim(plan)
            t1 = _now_ns()
            if not result.claimed:
                events.append({"e": "deny", "r": round_no, "p": plan, "o": result.outcome})
                continue
            token = result.fencing_token
            events.append(
                {
                    "e": "grant",
                    "r": round_no,
                    "p": plan,
                    "o": result.outcome,
                    "tok": token,
                    "t0": t0,
                    "t1": t1,
                }
            )
            marker: Path | None = markers / f"{plan}.held"
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # type: ignore[arg-type]
            except FileExistsError:
                events.append(
                    {
                        "e": "violation",
                        "r": round_no,
                        "p": plan,
                        "tok": token,
                        "what": "marker exists (EEXIST): two holders",
                    }
                )
                marker = None
            else:
                os.write(fd, f"{index} {token}\n".encode())
                os.close(fd)
            if marker is not None:
                os.unlink(marker)
            t2 = _now_ns()
            released = service.release(plan, reason="race", fencing_token=token)
            events.append(
                {
                    "e": "release",
                    "r": round_no,
                    "p": plan,
                    "o": released.outcome,
                    "tok": token,
                    "t0": t2,
                    "t1": _now_ns(),
                }
            )
        events.append({"e": "end", "t": _now_ns()})
        service.end("race done")
    except StoreError as exc:  # an outage (e.g. the server restarting), not a violation
        events.append({"e": "outage", "what": f"{type(exc).__name__}: {exc}"})
        with contextlib.suppress(Exception):
            barrier.abort()
    except BaseException as exc:
        events.append({"e": "error", "what": f"{type(exc).__name__}: {exc}"})
        with contextlib.suppress(Exception):
            barrier.abort()
        raise
    finally:
        with log_path.open("w") as out:
            for event in events:
                out.write(json.dumps(event) + "\n")
        if store is not None and hasattr(store, "close"):
            with contextlib.suppress(Exception):
                store.close()  # also after an outage: no pool thread keeps the process alive


def final_state_postgres(dsn: str, schema: str, plan: str) -> dict[str, Any]:
    """The plan's counter, live leases and lease tokens, read straight from the tables."""
    import psycopg
    from psycopg import sql

    s = sql.Identifier(schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT fencing_token FROM {s}.plans WHERE project = %s AND plan_id = %s"
            ).format(s=s),
            [PROJECT, plan],
        ).fetchone()
        leases = conn.execute(
            sql.SQL(
                "SELECT fencing_token, live FROM {s}.claims WHERE project = %s AND plan_id = %s"
            ).format(s=s),
            [PROJECT, plan],
        ).fetchall()
    return {
        "counter": row[0] if row else None,
        "live": [tok for tok, live in leases if live],
        "tokens": [tok for tok, _ in leases],
    }


def final_state_directory(path: str, plan: str) -> dict[str, Any]:
    """The plan's ledger token and holder, read from the heartbeat directory."""
    from mcp_server_heartbeat.store.directory.store import DirectoryStore

    ledger = DirectoryStore(Path(path)).read_claim(plan)
    return {
        "counter": ledger.fencing_token if ledger else None,
        "live": [ledger.fencing_token] if ledger and ledger.holder is not None else [],
        "tokens": None,  # the directory keeps only the current ledger
    }


def check_final(grants: list[int], final: dict[str, Any]) -> list[str]:
    """Violations of the final state against the grants the processes logged.

    ``grants``: every fencing token granted, in any order; ``final``: the
    ``counter`` (plan's token counter or ledger token), ``live`` (tokens of
    leases still live) and ``tokens`` (every lease row's token, None when the
    store keeps no history). Checked: the counter equals the last granted
    token, no live lease is left, and each granted token has exactly one lease
    row and no row exists for a token never granted.
    """
    violations = []
    top = max(grants) if grants else None
    if final["counter"] != top:
        violations.append(f"final token counter {final['counter']} != last granted token {top}")
    if final["live"]:
        violations.append(f"live lease(s) left after the race: tokens {final['live']}")
    if final["tokens"] is not None and sorted(final["tokens"]) != sorted(grants):
        missing = sorted(set(grants) - set(final["tokens"]))
        extra = sorted(set(final["tokens"]) - set(grants))
        violations.append(
            f"lease rows do not match the grants ({len(final['tokens'])} rows, "
            f"{len(grants)} grants): granted but no row {missing[:10]}, "
            f"row but never granted {extra[:10]}"
        )
    return violations


def race(spec: dict[str, str], processes: int, rounds: int, timeout_s: float) -> dict[str, Any]:
    """Run one contended race on ``spec``'s store; figures and violations."""
    plan = "contended"
    with tempfile.TemporaryDirectory(prefix="bench-store-race-") as tmp:
        work = Path(tmp)
        (work / "markers").mkdir()
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(processes)
        workers = [
            ctx.Process(target=_racer, args=(i, spec, str(work), rounds, plan, barrier))
            for i in range(processes)
        ]
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()
        events = read_logs(work, processes)
    config = RaceConfig(processes=processes, rounds=rounds, plans=1, lockstep=False)
    violations = check_history([e for e in events if e["e"] not in ("start", "end")], config)
    violations += [
        f"worker {i} exited with {w.exitcode}" for i, w in enumerate(workers) if w.exitcode != 0
    ]
    grants = sorted(e["tok"] for e in events if e["e"] == "grant")
    outages = [e for e in events if e["e"] == "outage"]
    final: dict[str, Any] = {"counter": None}
    if outages:
        # The store failed under some racers: their grants may be left unreleased and
        # the final state incomplete. Only the safety invariants still judge the run.
        violations = [v for v in violations if any(k in v for k in SAFETY_MARKS)]
    else:
        if spec["kind"] == "postgres":
            final = final_state_postgres(spec["dsn"], spec["schema"], plan)
        else:
            final = final_state_directory(spec["path"], plan)
        violations += check_final(grants, final)
    starts = [e["t"] for e in events if e["e"] == "start"]
    ends = [e["t"] for e in events if e["e"] == "end"]
    elapsed = (max(ends) - min(starts)) / 1e9 if starts and ends else float("nan")
    attempts = sum(1 for e in events if e["e"] in ("grant", "deny"))
    return {
        "attempts": attempts,
        "grants": len(grants),
        "elapsed": elapsed,
        "final": final["counter"],
        "violations": violations,
        "outages": [f"worker {e['w']}: {e['what']}" for e in outages],
    }


# -- the run ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("HEARTBEAT_TEST_DSN") or DEFAULT_DSN,
        help="PostgreSQL URL (default: HEARTBEAT_TEST_DSN, else %(default)s)",
    )
    parser.add_argument("--iterations", type=int, default=300, help="claim+release per batch")
    parser.add_argument("--repeats", type=int, default=5, help="latency batches per store")
    parser.add_argument("--processes", type=int, default=8, help="racing processes")
    parser.add_argument("--rounds", type=int, default=300, help="claim attempts per process")
    parser.add_argument("--timeout", type=float, default=300.0, help="per race, seconds")
    args = parser.parse_args()
    for name in ("iterations", "repeats", "processes", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")

    import psycopg
    from psycopg import sql

    from mcp_server_heartbeat.domain.errors import HeartbeatError
    from mcp_server_heartbeat.store.postgres import PostgresStore
    from mcp_server_heartbeat.store.urls import redact_url

    schema = "hb_bench_" + uuid.uuid4().hex[:12]
    pg_spec = {"kind": "postgres", "dsn": args.dsn, "schema": schema}
    failures: list[str] = []
    outages: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        dir_spec = {"kind": "directory", "path": str(Path(tmp) / "sessions")}
        pg_store = PostgresStore(args.dsn, PROJECT, schema=schema, lock_timeout=30.0)
        try:
            pg_store.migrate()
            dir_store = open_store(dir_spec)
            dir_store.prepare()
            pg_service = make_service(pg_store, "bench-latency", Path(tmp))
            dir_service = make_service(dir_store, "bench-latency", Path(tmp))
            with psycopg.connect(args.dsn, autocommit=True) as floor_conn:
                runs = {
                    "postgres store (service)": service_round(pg_service, "latency"),
                    "postgres floor (by hand)": floor_round(floor_conn, schema, "latency"),
                    "directory store (service)": service_round(dir_service, "latency"),
                }
                print(
                    f"store bench: PostgreSQL {redact_url(args.dsn)} schema {schema}; "
                    f"directory {dir_spec['path']}"
                )
                print(
                    f"claim+release latency, ms ({args.iterations} per batch, "
                    f"{args.repeats} interleaved repeats; min / median / max over repeats)"
                )
                figures = measure_latency(runs, args.iterations, args.repeats)
            print(f"  {'':28s}  {'p50':^22s}  {'p99':^22s}")
            for name, values in figures.items():
                print(f"  {name:28s}  {spread(values['p50'])}  {spread(values['p99'])}")
            store_p50 = statistics.median(figures["postgres store (service)"]["p50"])
            floor_p50 = statistics.median(figures["postgres floor (by hand)"]["p50"])
            print(f"  postgres store / floor (median p50)  {store_p50 / floor_p50:.1f}x")
            pg_service.end("bench done")
            dir_service.end("bench done")

            print(
                f"contended claims: {args.processes} processes x {args.rounds} attempts "
                "on one plan (free-running; grant -> O_EXCL marker -> release with token)"
            )
            print(
                f"  {'store':10s}  {'attempts':>8s}  {'granted':>7s}  {'elapsed s':>9s}  "
                f"{'claims/s':>8s}  {'attempts/s':>10s}  {'final token':>11s}  violations"
            )
            for label, spec in (("postgres", pg_spec), ("directory", dir_spec)):
                result = race(spec, args.processes, args.rounds, args.timeout)
                elapsed = result["elapsed"]
                per_s = result["grants"] / elapsed if elapsed > 0 else float("nan")
                tries_s = result["attempts"] / elapsed if elapsed > 0 else float("nan")
                print(
                    f"  {label:10s}  {result['attempts']:8d}  {result['grants']:7d}  "
                    f"{elapsed:9.2f}  {per_s:8.0f}  {tries_s:10.0f}  {result['final']!s:>11s}  "
                    f"{len(result['violations'])}"
                )
                failures += [f"{label}: {line}" for line in result["violations"]]
                outages += [f"{label}: {line}" for line in result["outages"]]
        except (psycopg.Error, HeartbeatError) as exc:
            # An outage or a refusal outside the race is not a measurement: no figures.
            print(
                f"bench_store: could not measure, the store failed: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            return 2
        finally:
            pg_store.close()
            try:
                with psycopg.connect(args.dsn, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
            except psycopg.Error as exc:
                print(f"bench_store: schema {schema} left behind: {exc}", file=sys.stderr)
    for line in failures[:20]:
        print(f"  VIOLATION {line}")
    for line in outages[:20]:
        print(f"  OUTAGE {line} (race incomplete; only safety was checked)")
    return 1 if failures else 2 if outages else 0


if __name__ == "__main__":
    sys.exit(main())
