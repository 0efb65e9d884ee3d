"""Time the observation commands on a heartbeat directory of N sessions.

    python bench/bench_cli.py [--sessions 1000] [--runs 15]

Builds a temp directory with the real store: N session records (80 % live on
this host with the running pid 1, 10 % stale, 5 % ended, 5 % dead), one claim
per 10 sessions, and one event per claim. Then runs each command as a user
would — a fresh ``mcp-server-heartbeat`` process — and prints the median and
the 90th percentile of the wall time, plus the bare interpreter start-up for
comparison. ``statusline`` gets Claude Code's status-line JSON on stdin.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord
from mcp_server_heartbeat.host.probe import process_start_time
from mcp_server_heartbeat.store.directory.events import Event
from mcp_server_heartbeat.store.directory.store import DirectoryStore


def build(directory: Path, sessions: int) -> str:
    """Fill ``directory``; returns the id of one live session that holds a plan."""
    store = DirectoryStore(directory)
    store.prepare()
    now = datetime.now(UTC)
    host = socket.gethostname()
    pid1_started = process_start_time(1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_started = process_start_time(child.pid)
    child.wait()
    own = ""
    with store.lock():
        for i in range(sessions):
            kind = i % 20
            session_id = f"s{i:05d}-bench"
            beat = now - timedelta(seconds=5 if kind < 16 else 900)
            record = SessionRecord(
                session_id=session_id,
                entrypoint="cli",
                agent_version="claude-code/2.1.329",
                branch=f"feat-{i % 7}",
                cwd="/work/bench",
                started_at=now - timedelta(hours=1),
                last_heartbeat=beat,
                last_call_at=beat,
                last_activity="bench:step",
                host=host,
                pid=child.pid if kind == 19 else 1,
                pid_started_at=dead_started if kind == 19 else pid1_started,
                heartbeat_interval_s=30.0,
                ended_at=beat if kind == 18 else None,
            )
            if i % 10 == 0 and kind < 16:
                plan = f"plan-{i:05d}"
                record = record.model_copy(
                    update={"plan_id": plan, "fencing_token": 1, "claimed_at": beat}
                )
                store.write_claim(
                    ClaimRecord(plan_id=plan, fencing_token=1, holder=session_id, claimed_at=beat)
                )
                store.append_event(
                    Event(
                        at=beat,
                        event="claim_granted",
                        session_id=session_id,
                        plan_id=plan,
                        fencing_token=1,
                    )
                )
                own = own or session_id
            store.write_session(record)
    return own


def timed(argv: list[str], runs: int, stdin: bytes = b"") -> tuple[float, float]:
    """Median and p90 wall time (seconds) of ``runs`` fresh processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stderr.decode()}")
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def in_process(work: Path, own: str, status_line_input: bytes, runs: int) -> None:
    """The commands' own work, imports excluded: what grows with the sessions."""
    import contextlib
    import io

    from mcp_server_heartbeat.cli import status, statusline
    from mcp_server_heartbeat.cli.main import build_parser

    common = ["--root", str(work), "--dir", "sessions"]
    parser = build_parser()
    line_args = parser.parse_args(["statusline", *common])
    status_args = parser.parse_args(["status", *common])
    data = json.loads(status_line_input)

    def once(call: object) -> float:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            call()  # type: ignore[operator]
        return time.perf_counter() - start

    for label, call in (
        ("statusline work (in-process)", lambda: statusline.render(line_args, data, os.environ)),
        ("status work (in-process)", lambda: status.run(status_args, out=io.StringIO())),
    ):
        once(call)  # warm caches
        times = sorted(once(call) for _ in range(runs))
        median, p90 = statistics.median(times), times[int(0.9 * (len(times) - 1))]
        print(f"  {label:<36} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        directory = work / "sessions"
        own = build(directory, args.sessions)
        exe = shutil.which("mcp-server-heartbeat", path=os.path.dirname(sys.executable))
        command = [exe] if exe else [sys.executable, "-m", "mcp_server_heartbeat"]
        common = ["--root", str(work), "--dir", "sessions"]
        status_line_input = json.dumps(
            {
                "session_id": own,
                "cwd": str(work),
                "workspace": {"current_dir": str(work), "project_dir": str(work)},
            }
        ).encode()
        env_note = (
            f"{args.sessions} sessions, {args.runs} runs each, python {sys.version.split()[0]}"
        )
        print(f"bench_cli: {env_note}")
        empty = work / "empty"
        empty.mkdir()
        rows = [
            ("python -c pass (interpreter start)", [sys.executable, "-c", "pass"], b""),
            (
                "statusline, empty directory",
                [*command, "statusline", "--root", str(empty)],
                status_line_input,
            ),
            ("statusline", [*command, "statusline", *common], status_line_input),
            ("status", [*command, "status", *common], b""),
            ("status --json --all", [*command, "status", "--json", "--all", *common], b""),
            ("trace --branch feat-1", [*command, "trace", "--branch", "feat-1", *common], b""),
            ("history plan-00000", [*command, "history", "plan-00000", *common], b""),
        ]
        for label, argv, stdin in rows:
            median, p90 = timed(argv, args.runs, stdin)
            print(f"  {label:<36} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms")
        sample = subprocess.run(rows[2][1], input=status_line_input, capture_output=True)
        print(f"  statusline printed: {sample.stdout.decode().strip()}")
        parser_only = [
            sys.executable,
            "-c",
            "from mcp_server_heartbeat.cli.main import build_parser; build_parser()",
        ]
        median, p90 = timed(parser_only, args.runs)
        label = "start-up: import cli + build parser"
        print(f"  {label:<36} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms")
        in_process(work, own, status_line_input, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
