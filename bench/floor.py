"""Every performance figure beside its floor, in one run (issue 13's table).

    python bench/floor.py [--repeats 5] [--quick] [--markdown | --json]
                          [--baseline /path/to/main/.venv/bin/mcp-server-heartbeat]

Each row measures the product and a floor that does the least the same job
needs, interleaved sample by sample in one run (so machine noise hits both),
and reports min / median / max over ``--repeats`` repeats, the ratio of the
medians, the target and whether it is met. Only public interfaces are used:
the installed console script over real stdio, the CLI as a fresh process, and
heartbeat directories written in the documented record format. Floors run the
SDK's bare ``MCPServer`` (``bench/floor_server.py``) in a subprocess, or the raw
read of the same files. The contended-claims row has no floor; its target
(twice today's figure) is judged against ``--baseline``, another installation
(e.g. main's) raced in the same run, or ``--today-granted``; without either
only its violations are judged.

Exit code 1 when an invariant was violated — a tool error, a wrong outcome, a
double grant or fencing-token violation in the contended race, a server that
did not exit cleanly — never because a figure is slow. Progress goes to
stderr; the table (or markdown, or JSON) to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor_race import race, start_racers, stop_racers
from floor_support import (
    CONSOLE_SCRIPT,
    RAW_READ_PROCESS,
    InvariantError,
    Rpc,
    floor_argv,
    ms,
    p50,
    populate,
    product_argv,
    raw_read,
    spread,
    timed_process,
)
from floor_table import TIMES, Row, markdown, text

LINEAR_SLACK = 1.25
"""``list_sessions`` is "linear" when its cost per session at the large size is
at most this many times its cost per session at the small size."""


@dataclass(frozen=True)
class Sizes:
    """How much work one run does (``--quick`` shrinks it)."""

    repeats: int
    inner: int  # whole-process and listing samples per repeat (median taken)
    calls: int  # tool calls per repeat for the p50 rows
    starts: int  # cold starts per repeat
    list_small: int
    list_large: int
    statusline_sessions: int
    status_sessions: int
    racers: int
    race_attempts: int


FULL = Sizes(5, 3, 100, 2, 1_000, 10_000, 100, 1_000, 8, 200)
QUICK = Sizes(1, 1, 15, 1, 100, 1_000, 100, 200, 4, 25)


def log(message: str) -> None:
    print(f"[floor] {message}", file=sys.stderr, flush=True)


def _ratio_met(row: Row, limit: float) -> None:
    ratio = row.ratio
    row.met = ratio is not None and ratio <= limit and not row.violations


# -- rows over stdio ---------------------------------------------------------------------


def cold_start(work: Path, sizes: Sizes) -> Row:
    """Spawn -> ``initialize`` result; each process then must exit 0 on stdin EOF."""
    row = Row("cold start, spawn → `initialize` result", "≤ 1.05")
    row.floor_label = "bare one-tool `MCPServer`"
    directory = work / "cold" / "sessions"
    count = 0
    for repeat in range(sizes.repeats):
        product, floor = [], []
        for i in range(sizes.starts * 2):
            as_product = (i + repeat) % 2 == 0
            count += 1
            if as_product:
                argv, label = product_argv(directory, f"cold-{count}"), "product cold start"
            else:
                argv, label = floor_argv(), "floor cold start"
            began = time.perf_counter()
            server = Rpc(argv, work, label)
            try:
                server.initialize()
                (product if as_product else floor).append(ms(time.perf_counter() - began))
                server.close()
            finally:
                server.kill()
        row.product.append(p50(product))
        row.floor.append(p50(floor))
    _ratio_met(row, 1.05)
    return row


def tool_latency(work: Path, sizes: Sizes) -> list[Row]:
    """``heartbeat`` vs ``echo``; ``claim_plan`` + ``release`` vs 2 x ``echo`` (p50s)."""
    beat = Row("`heartbeat` over stdio, p50", "≤ 1.3", floor_label="bare `echo` tool")
    pair = Row("`claim_plan` + `release`, p50", "≤ 1.5", floor_label=f"2 {TIMES} bare `echo`")
    product = Rpc(product_argv(work / "tools" / "sessions", "bench-tools"), work, "product")
    floor = Rpc(floor_argv(), work, "floor")
    try:
        product.initialize()
        floor.initialize()
        product.call("heartbeat", activity="bench:warm")
        floor.call("echo", text="warm")

        def heartbeat(i: int) -> None:
            result = product.call("heartbeat", activity=f"bench:{i}")
            session = result["structuredContent"]["session"]
            if session["session_id"] != "bench-tools" or session["last_activity"] != f"bench:{i}":
                raise InvariantError(f"heartbeat answered another session or activity: {session}")

        def echo(i: int) -> None:
            result = floor.call("echo", text=f"bench:{i}")
            if f"bench:{i}" not in json.dumps(result):
                raise InvariantError(f"echo did not echo: {result}")

        def claim_release(plan: str) -> None:
            claim = product.call("claim_plan", plan_id=plan)["structuredContent"]
            if claim["outcome"] != "claimed" or not claim["claimed"]:
                raise InvariantError(f"claim_plan {plan} on a free plan answered {claim}")
            done = product.call("release", plan_id=plan, fencing_token=claim["fencing_token"])[
                "structuredContent"
            ]
            if done["outcome"] != "released":
                raise InvariantError(f"release {plan} answered {done}")

        for repeat in range(sizes.repeats):
            samples: dict[str, list[float]] = {"hb": [], "echo": [], "pair": [], "echo2": []}
            for i in range(sizes.calls):
                plan = f"bench-{repeat}-{i}"
                steps: list[tuple[str, Callable[[], None]]] = [
                    ("hb", lambda i=i: heartbeat(i)),
                    ("echo", lambda i=i: echo(i)),
                    ("pair", lambda plan=plan: claim_release(plan)),
                    ("echo2", lambda i=i: (echo(i), echo(i + 1))),
                ]
                if i % 2:
                    steps.reverse()
                for name, step in steps:
                    began = time.perf_counter()
                    step()
                    samples[name].append(ms(time.perf_counter() - began))
            beat.product.append(p50(samples["hb"]))
            beat.floor.append(p50(samples["echo"]))
            pair.product.append(p50(samples["pair"]))
            pair.floor.append(p50(samples["echo2"]))
        product.close()
        floor.close()
    finally:
        product.kill()
        floor.kill()
    _ratio_met(beat, 1.3)
    _ratio_met(pair, 1.5)
    return [beat, pair]


def list_sessions(work: Path, sizes: Sizes, sessions: int, figure: str, target: str) -> Row:
    """``list_sessions`` over stdio vs the raw in-process read of the same files."""
    row = Row(figure, target, floor_label="`os.scandir` + read + `json.loads`, in-process")
    directory = work / f"list-{sessions}" / "sessions"
    counts = populate(directory, sessions - 1)  # plus the server's own record
    server = Rpc(product_argv(directory, "bench-lister"), work, "product list_sessions")
    # include_ended=false hides ended records; the server's own record is listed.
    expected = sessions - counts["ended"]
    try:
        server.initialize()

        def listing() -> None:
            reply = server.call("list_sessions")["structuredContent"]
            if reply["unreadable"] or len(reply["sessions"]) != expected:
                raise InvariantError(
                    f"list_sessions at {sessions}: {len(reply['sessions'])} sessions "
                    f"(expected {expected}), unreadable {reply['unreadable'][:3]}"
                )

        def floor() -> None:
            if raw_read(directory) != sessions:
                raise InvariantError(f"raw read of {directory} did not find {sessions} records")

        listing()
        floor()
        for repeat in range(sizes.repeats):
            product_samples, floor_samples = [], []
            for i in range(sizes.inner):
                steps = [(product_samples, listing), (floor_samples, floor)]
                if (i + repeat) % 2:
                    steps.reverse()
                for samples, step in steps:
                    began = time.perf_counter()
                    step()
                    samples.append(ms(time.perf_counter() - began))
            row.product.append(p50(product_samples))
            row.floor.append(p50(floor_samples))
        server.close()
    finally:
        server.kill()
    _ratio_met(row, 3.0)
    return row


# -- whole processes ---------------------------------------------------------------------


def whole_process(
    work: Path,
    sizes: Sizes,
    row: Row,
    product: tuple[list[str], bytes],
    floor: tuple[list[str], bytes],
    check: Callable[[str], None],
) -> Row:
    """Interleaved fresh processes: product then floor (alternating order)."""
    timed_process(*product, work, row.figure)  # page cache warm, as for a user
    for repeat in range(sizes.repeats):
        product_samples, floor_samples = [], []
        for i in range(sizes.inner):
            steps = [(product_samples, product, True), (floor_samples, floor, False)]
            if (i + repeat) % 2:
                steps.reverse()
            for samples, (argv, stdin), is_product in steps:
                elapsed, out = timed_process(argv, stdin, work, row.figure)
                if is_product:
                    check(out)
                samples.append(elapsed)
        row.product.append(p50(product_samples))
        row.floor.append(p50(floor_samples))
    _ratio_met(row, 3.0)
    return row


def statusline(work: Path, sizes: Sizes) -> Row:
    n = sizes.statusline_sessions
    row = Row(f"`statusline`, whole process, {n:,} sessions", "≤ 3")
    row.floor_label = "`python3 -c pass`"
    directory = work / "statusline" / "sessions"
    populate(directory, n)
    own = "s00000-bench"  # live and holds plan-00000
    stdin = json.dumps(
        {
            "session_id": own,
            "cwd": str(work),
            "workspace": {"current_dir": str(work), "project_dir": str(work)},
        }
    ).encode()
    argv = [CONSOLE_SCRIPT, "statusline", "--root", str(work), "--dir", str(directory)]

    def check(out: str) -> None:
        if "plan-00000" not in out:
            raise InvariantError(f"statusline did not show the session's plan: {out!r}")

    return whole_process(
        work, sizes, row, (argv, stdin), ([sys.executable, "-c", "pass"], b""), check
    )


def status(work: Path, sizes: Sizes) -> Row:
    n = sizes.status_sessions
    row = Row(f"`status`, whole process, {n:,} sessions", "≤ 3")
    row.floor_label = "raw read loop as a fresh process"
    directory = work / "status" / "sessions"
    populate(directory, n)
    argv = [CONSOLE_SCRIPT, "status", "--root", str(work), "--dir", str(directory)]
    floor = [sys.executable, "-c", RAW_READ_PROCESS, str(directory)]

    def check(out: str) -> None:
        if "plan-00000" not in out:
            raise InvariantError(f"status did not list the sessions: {out[:300]!r}")

    return whole_process(work, sizes, row, (argv, b""), (floor, b""), check)


def contended(work: Path, sizes: Sizes, today: float | None, baseline: str | None) -> Row:
    """Granted claims/s of ``sizes.racers`` servers racing for one plan. With
    ``baseline`` (another installation's console script, e.g. main's) the same
    race runs with its servers too, interleaved repeat by repeat, as the floor
    column, and the target is 2 x that figure; else 2 x ``today`` when given;
    else the speed is not judged (a figure from another run on a shared
    machine is no yardstick), only the violations."""
    row = Row(f"contended claims, {sizes.racers} processes, 1 plan", "", unit="granted/s")
    if baseline:
        row.target = f"≥ 2 {TIMES} today, 0 violations"
        row.floor_label = "today (`--baseline`)"
    elif today is not None:
        row.target = f"≥ {2 * today:.0f} granted/s (2 {TIMES} {today:g}), 0 violations"
    else:
        row.target = f"≥ 2 {TIMES} today (judged with `--baseline`), 0 violations"
    servers = start_racers(work / "race", sizes.racers)
    today_servers = start_racers(work / "race-today", sizes.racers, baseline) if baseline else []
    grants = attempts = 0
    try:
        for repeat in range(sizes.repeats):
            runs = [
                (row.product, servers, work / "race"),
                (row.floor, today_servers, work / "race-today"),
            ]
            if repeat % 2:
                runs.reverse()
            for figures, racers, where in runs:
                if not racers:
                    continue
                result = race(where, racers, f"contended-{repeat}", sizes.race_attempts)
                figures.append(result["granted_per_s"])
                row.violations += result["violations"]
                if racers is servers:
                    grants += result["grants"]
                    attempts += result["attempts"]
                    row.note = (
                        f"{sizes.racers} {TIMES} {sizes.race_attempts} attempts per repeat; "
                        f"{grants:,} granted of {attempts:,} attempts in all, "
                        f"{len(row.violations)} violations; last repeat's final token "
                        f"{result['final_token']} (= its grants + 1)"
                    )
    finally:
        row.violations += stop_racers(servers)
        row.violations += stop_racers(today_servers)
    median = spread(row.product)["median"]
    if row.violations:
        row.met = False
    elif baseline:
        row.met = row.ratio is not None and row.ratio >= 2
    elif today is not None:
        row.met = median >= 2 * today
    return row


def run(
    sizes: Sizes, today: float | None, work: Path, baseline: str | None = None
) -> tuple[list[Row], list[str]]:
    """Every row; returns them with every invariant violation found."""
    rows: list[Row] = []
    violations: list[str] = []
    small = (
        sizes.list_small,
        f"`list_sessions` over stdio, {sizes.list_small:,} sessions",
        "≤ 3",
    )
    large = (sizes.list_large, f"same at {sizes.list_large:,} sessions", "≤ 3, linear")
    steps: list[tuple[str, Callable[[], Row | list[Row]]]] = [
        ("cold start", lambda: cold_start(work, sizes)),
        ("heartbeat, claim+release", lambda: tool_latency(work, sizes)),
        (f"list_sessions {small[0]}", lambda: list_sessions(work, sizes, *small)),
        (f"list_sessions {large[0]}", lambda: list_sessions(work, sizes, *large)),
        ("statusline", lambda: statusline(work, sizes)),
        ("status", lambda: status(work, sizes)),
        ("contended claims", lambda: contended(work, sizes, today, baseline)),
    ]
    for name, step in steps:
        log(f"{name} ...")
        began = time.monotonic()
        try:
            made = step()
        except InvariantError as exc:
            violations.append(f"{name}: {exc}")
            log(f"{name}: INVARIANT VIOLATED: {exc}")
            continue
        except (KeyError, TypeError) as exc:  # a reply without the documented shape
            violations.append(f"{name}: reply not in the documented shape: {exc!r}")
            log(f"{name}: INVARIANT VIOLATED: reply shape {exc!r}")
            continue
        for row in made if isinstance(made, list) else [made]:
            rows.append(row)
            violations += [f"{row.figure}: {v}" for v in row.violations]
        log(f"{name} done in {time.monotonic() - began:.1f} s")
    _linear(rows, sizes)
    return rows, violations


def _linear(rows: list[Row], sizes: Sizes) -> None:
    lists = [r for r in rows if r.figure.startswith(("`list_sessions`", "same at"))]
    if len(lists) != 2 or not lists[0].product or not lists[1].product:
        return
    per_small = spread(lists[0].product)["median"] / sizes.list_small
    per_large = spread(lists[1].product)["median"] / sizes.list_large
    growth = per_large / per_small
    lists[1].note = (
        f"cost per session {per_large * 1000:.0f} µs vs {per_small * 1000:.0f} µs at "
        f"{sizes.list_small:,} ({TIMES}{growth:.2f}; linear means ≤ {TIMES}{LINEAR_SLACK})"
    )
    lists[1].met = bool(lists[1].met) and growth <= LINEAR_SLACK


def project(work: Path) -> None:
    """Make ``work`` what a user's project is: a git repository with one commit
    (the server asks git for the branch and worktree at start)."""
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "bench"]):
        subprocess.run([*git, *args], cwd=work, check=True, stdin=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="repeats per row (default 5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (~30 s)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="the table as markdown")
    form.add_argument("--json", action="store_true", help="everything as JSON")
    parser.add_argument(
        "--today-granted",
        type=float,
        metavar="PER_S",
        help="judge the contended row against this granted/s of today's main "
        "(measured by this command; --baseline is better: same run, same noise)",
    )
    parser.add_argument(
        "--baseline",
        metavar="CONSOLE_SCRIPT",
        help="another installation's mcp-server-heartbeat (e.g. main's): the contended "
        "race runs with it too, interleaved, and the target is 2x its figure",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    if args.baseline and not os.access(args.baseline, os.X_OK):
        parser.error(f"--baseline {args.baseline}: not an executable")
    if not os.access(CONSOLE_SCRIPT, os.X_OK):
        parser.error(f"{CONSOLE_SCRIPT} not found: install the package (pip install -e .)")
    for script in filter(None, (CONSOLE_SCRIPT, args.baseline)):
        compile_installation(script)
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        project(work)
        rows, violations = run(sizes, args.today_granted, work, args.baseline)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - began
    header = (
        f"bench/floor.py{' --quick' if args.quick else ''}: {sizes.repeats} repeats, "
        f"{os.cpu_count()} cores, python {platform.python_version()}, "
        f"mcp {_version('mcp')}, {elapsed:.0f} s, load average "
        f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after"
    )
    if args.json:
        doc = {
            "header": header,
            "sizes": sizes.__dict__,
            "elapsed_s": elapsed,
            "rows": [row.as_json() for row in rows],
            "violations": violations,
            "ok": not violations,
            "markdown": markdown(rows, header),
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    elif args.markdown:
        print(markdown(rows, header), end="")
    else:
        print(text(rows, header), end="")
    for violation in violations:
        log(f"violation: {violation}")
    return 1 if violations else 0


def compile_installation(script: str) -> None:
    """Compile the package behind ``script`` to bytecode first, as an installation
    from a wheel is, and as the SDK and pydantic are: with an editable install and
    ``PYTHONDONTWRITEBYTECODE`` set (some machines set it), every start would
    otherwise compile the product's modules again while the floor's are compiled.
    The interpreter is the one beside the script."""
    python = str(Path(script).parent / "python")
    subprocess.run(
        [
            python,
            "-c",
            "import compileall, os, mcp_server_heartbeat as m; "
            "compileall.compile_dir(os.path.dirname(m.__file__), quiet=1)",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
