"""Helpers of ``bench/floor.py``: a JSON-RPC client over a process's stdio, the
heartbeat directory of N session records, and the spread of samples.

Only public interfaces: servers are spoken to over real stdio, records are
written in the documented on-disk format (``<dir>/<session_id>.json``, one
:class:`SessionRecord` as JSON; ``claims/<plan_id>.json``, one
:class:`ClaimRecord`), built with the package's own models.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord

BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = str(BIN / "mcp-server-heartbeat")
FLOOR_SERVER = str(Path(__file__).resolve().with_name("floor_server.py"))
PROTOCOL_VERSION = "2025-11-25"
REPLY_TIMEOUT_S = 120.0


class InvariantError(Exception):
    """A tool error, a wrong outcome or a server that misbehaved: the run fails."""


def clean_env(root: Path) -> dict[str, str]:
    """The environment a client gives: project dir set, no inherited session ids."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAUDE", "HEARTBEAT_")) and k != "AI_AGENT"
    }
    env["CLAUDE_PROJECT_DIR"] = str(root)
    return env


def product_argv(directory: Path, session_id: str, console: str = CONSOLE_SCRIPT) -> list[str]:
    """The installed console script (or ``console``, another installation's)
    serving ``directory`` as ``session_id``."""
    return [console, "--dir", str(directory), "--session-id", session_id]


def floor_argv() -> list[str]:
    """The bare one-tool SDK server."""
    return [sys.executable, FLOOR_SERVER]


class Rpc:
    """One server process spoken to line by line over its stdin/stdout."""

    def __init__(self, argv: list[str], root: Path, label: str) -> None:
        self.label = label
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            argv,
            cwd=root,
            env=clean_env(root),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            bufsize=0,
        )
        self._ids = itertools.count(1)
        self._buffer = bytearray()
        self._fd = self.proc.stdout.fileno()  # type: ignore[union-attr]

    def stderr(self) -> str:
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")[-2000:]

    def _line(self, deadline: float) -> bytes:
        searched = 0
        while True:
            end = self._buffer.find(b"\n", searched)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            searched = len(self._buffer)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InvariantError(f"{self.label}: no reply within {REPLY_TIMEOUT_S} s")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    raise InvariantError(
                        f"{self.label}: stdout closed (exit {self.proc.poll()}): {self.stderr()}"
                    )
                self._buffer += chunk

    def send(self, message: dict[str, Any]) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the matching response (notifications are skipped)."""
        request_id = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            message = json.loads(self._line(deadline))
            if message.get("id") == request_id:
                if "error" in message:
                    raise InvariantError(f"{self.label}: {method} answered {message['error']}")
                return message["result"]

    def initialize(self) -> dict[str, Any]:
        """The ``initialize`` result (the notification ``initialized`` sent after it)."""
        result = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "bench-floor", "version": "1.0"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """A ``tools/call``; its result. An ``isError`` result is an invariant error."""
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []))
            raise InvariantError(f"{self.label}: {tool} returned an error: {text[:500]}")
        return result

    def close(self, timeout: float = 10.0) -> None:
        """Close stdin and wait; an exit code other than 0 is an invariant error."""
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise InvariantError(
                    f"{self.label}: still running {timeout} s after stdin closed"
                ) from None
            if code != 0:
                raise InvariantError(f"{self.label}: exited {code}: {self.stderr()}")
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure the process is gone (cleanup after a failure)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.stderr_file.closed:
            self.stderr_file.close()


# -- the heartbeat directory -------------------------------------------------------------


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _namespace(kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/ns/{kind}")
    except OSError:
        return None


def populate(directory: Path, sessions: int, claim_every: int = 10) -> dict[str, int]:
    """Write ``sessions`` records into ``directory`` (created 0700, files 0600).

    The mix of ``bench/bench_cli.py``: of every 20 records, 16 live (process 1
    of this host, heartbeat 5 s old), 2 stale (15 min old, process alive), 1
    ended, 1 dead (a process that has exited); one live record in
    ``claim_every`` holds a plan with its claim file. Returns the counts per kind.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / "claims").mkdir(mode=0o700, exist_ok=True)
    now = datetime.now(UTC)
    boottime = time.clock_gettime(time.CLOCK_BOOTTIME)
    host = socket.gethostname()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_started = datetime.fromtimestamp(psutil.Process(child.pid).create_time(), UTC)
    dead_ticks = _start_ticks(child.pid)
    child.wait()
    live_started = datetime.fromtimestamp(psutil.Process(1).create_time(), UTC)
    common = {
        "entrypoint": "cli",
        "agent_version": "claude-code/2.1.329",
        "cwd": str(directory.parent),
        "started_at": now - timedelta(hours=1),
        "last_activity": "bench:step",
        "host": host,
        "heartbeat_interval_s": 30.0,
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_namespace": _namespace("pid"),
        "time_namespace": _namespace("time"),
    }
    counts = {"live": 0, "stale": 0, "ended": 0, "dead": 0, "claims": 0}
    for i in range(sessions):
        kind = i % 20
        age = 5.0 if kind < 16 else 900.0
        beat = now - timedelta(seconds=age)
        dead = kind == 19
        fields: dict[str, Any] = {
            **common,
            "session_id": f"s{i:05d}-bench",
            "branch": f"feat-{i % 7}",
            "last_heartbeat": beat,
            "last_call_at": beat,
            "last_heartbeat_boottime": boottime - age,
            "pid": child.pid if dead else 1,
            "pid_started_at": dead_started if dead else live_started,
            "pid_start_ticks": dead_ticks if dead else _start_ticks(1),
            "ended_at": beat if kind == 18 else None,
            "end_reason": "bench" if kind == 18 else None,
        }
        counts[("live", "stale", "ended", "dead")[(kind >= 16) + (kind >= 18) + (kind >= 19)]] += 1
        if kind < 16 and i % claim_every == 0:
            plan = f"plan-{i:05d}"
            fields.update(plan_id=plan, fencing_token=1, claimed_at=beat)
            claim = ClaimRecord(
                plan_id=plan,
                fencing_token=1,
                holder=fields["session_id"],
                holder_host=host,
                holder_pid=1,
                holder_pid_started_at=live_started,
                holder_pid_start_ticks=fields["pid_start_ticks"],
                claimed_at=beat,
                acquired_by="claim",
            )
            _write(directory / "claims" / f"{plan}.json", claim.model_dump_json(indent=2))
            counts["claims"] += 1
        record = SessionRecord(**fields)
        _write(directory / f"{record.session_id}.json", record.model_dump_json(indent=2))
    return counts


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")


def raw_read(directory: Path) -> int:
    """The floor of a listing: ``os.scandir`` + read + ``json.loads`` of every
    record file; returns how many were parsed."""
    parsed = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
                with open(entry.path, "rb") as handle:
                    json.loads(handle.read())
                parsed += 1
    return parsed


RAW_READ_PROCESS = (
    "import json, os, sys\n"
    "with os.scandir(sys.argv[1]) as entries:\n"
    "    for entry in entries:\n"
    "        if entry.name.endswith('.json') and entry.is_file(follow_symlinks=False):\n"
    "            with open(entry.path, 'rb') as handle:\n"
    "                json.loads(handle.read())\n"
)
"""The floor of ``status`` as a fresh process: the same raw read loop."""


# -- figures -----------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000.0


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def spread(samples: list[float]) -> dict[str, float]:
    """``{min, median, max}`` of ``samples``."""
    return {
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
    }


def timed_process(argv: list[str], stdin: bytes, cwd: Path, label: str) -> tuple[float, str]:
    """Wall time (ms) of one whole process and its stdout; a non-zero exit or
    anything on stderr is an invariant error."""
    began = time.perf_counter()
    done = subprocess.run(
        argv, input=stdin, capture_output=True, cwd=cwd, env=clean_env(cwd), check=False
    )
    elapsed = ms(time.perf_counter() - began)
    if done.returncode != 0 or done.stderr:
        stderr = done.stderr.decode(errors="replace")[-500:]
        raise InvariantError(f"{label}: exit {done.returncode}, stderr: {stderr}")
    return elapsed, done.stdout.decode(errors="replace")
