"""Several "machines" on one box for the team-mode tests: each host is a UTS +
PID + mount namespace (its own hostname, its own PID 1 and ``/proc``) started
with ``unshare``; servers join a host with ``nsenter`` and share one
PostgreSQL database over loopback. An :class:`Observer` reads the database
directly with psycopg (never through a server) and records every violation of
"at most one live holder per plan" and "fencing tokens only go up".
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from stdio_client import StdioServer, clean_env, wait_until


class Host:
    """One "machine": ``unshare --uts --pid --fork --mount-proc`` running a shell
    as PID 1 that names the host and then waits; :meth:`kill` kills -9 that
    init, and with it (kernel rule) every process of the namespace."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--uts",
                "--pid",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                f"hostname {name}; exec sleep 3600",
            ],
            stdin=subprocess.DEVNULL,
        )
        self.init_pid = 0

        def ready() -> bool:
            for child in psutil.Process(self.proc.pid).children():
                try:
                    if child.name() == "sleep":
                        self.init_pid = child.pid
                        return True
                except psutil.NoSuchProcess:
                    pass
            return False

        wait_until(ready, timeout=20, what=f"host {name} to start")

    def prefix(self) -> tuple[str, ...]:
        """Run a command inside this host, as the child of a shell (so the
        server has a live parent in its own namespace, as under a terminal)."""
        return (
            "nsenter",
            "--target",
            str(self.init_pid),
            "--uts",
            "--pid",
            "--mount",
            "--",
            "sh",
            "-c",
            '"$@"; exit $?',
            "sh",
        )

    def kill(self) -> None:
        """kill -9 the host's init: the whole "machine" dies at once."""
        if self.init_pid and psutil.pid_exists(self.init_pid):
            psutil.Process(self.init_pid).kill()
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


class HostServer:
    """A real server process (the console script over stdio) on a :class:`Host`;
    calls are serialised by ``lock`` so a worker thread and the test's director
    can share it."""

    def __init__(
        self,
        host: Host,
        root: Path,
        session_id: str,
        *,
        dsn: str,
        schema: str,
        project: str,
        stale_after: float = 3.0,
        interval: float = 0.5,
        env_extra: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.session_id = session_id
        self.lock = threading.Lock()
        env = clean_env(
            root, HEARTBEAT_SCHEMA=schema, HEARTBEAT_PROJECT=project, **(env_extra or {})
        )
        self.server = StdioServer(
            root,
            "--store",
            dsn,
            "--session-id",
            session_id,
            "--interval",
            str(interval),
            "--stale-after",
            str(stale_after),
            env=env,
            prefix=host.prefix(),
        )
        self.server.initialize()

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """The tool's structured result; raises AssertionError on a tool error."""
        with self.lock:
            result = self.server.call(tool, **arguments)
        if result.get("isError"):
            raise AssertionError(f"{self.session_id} {tool}: {result}")
        return result["structuredContent"]

    def server_pid(self) -> int:
        """The server's own PID as the outer namespace sees it."""
        for child in psutil.Process(self.server.pid).children(recursive=True):
            try:
                if child.name() != "sh" and any(
                    "mcp-server-heartbeat" in part for part in child.cmdline()
                ):
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        raise LookupError(f"server process of {self.session_id} not found")

    def kill9(self) -> None:
        """kill -9 the server process itself (not its wrapper)."""
        psutil.Process(self.server_pid()).kill()
        self.server.proc.wait(timeout=20)

    def stop(self) -> None:
        self.server.stop()


class Observer:
    """Reads the claims table directly, every ``period`` seconds, in a thread:
    ``violations`` lists each time a plan had two live claims or a plan's token
    counter went down or the live claim's token was not the plan's largest."""

    def __init__(self, dsn: str, schema: str, project: str, period: float = 0.02) -> None:
        import psycopg
        from psycopg import sql

        self.dsn, self.project, self.period = dsn, project, period
        self.schema = sql.Identifier(schema)
        self.sql = sql
        self.psycopg = psycopg
        self.violations: list[str] = []
        self.samples = 0
        self.errors = 0
        self.counters: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``text`` (``{s}`` = the schema) on a fresh autocommit connection."""
        with self.psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(self.sql.SQL(text).format(s=self.schema), params).fetchall()

    def _sample(self) -> None:
        rows = self.query(
            "SELECT p.plan_id, p.fencing_token,"
            " (SELECT count(*) FROM {s}.claims c WHERE c.project = p.project"
            "  AND c.plan_id = p.plan_id AND c.live),"
            " (SELECT max(c.fencing_token) FROM {s}.claims c WHERE c.project = p.project"
            "  AND c.plan_id = p.plan_id AND c.live),"
            " (SELECT max(c.fencing_token) FROM {s}.claims c WHERE c.project = p.project"
            "  AND c.plan_id = p.plan_id)"
            " FROM {s}.plans p WHERE p.project = %s",
            [self.project],
        )
        for plan, counter, live, live_token, max_token in rows:
            if live > 1:
                self.violations.append(f"plan {plan}: {live} live claims")
            if counter < self.counters.get(plan, 0):
                self.violations.append(
                    f"plan {plan}: token counter went down {self.counters[plan]} -> {counter}"
                )
            if live_token is not None and live_token != max_token:
                self.violations.append(
                    f"plan {plan}: live token {live_token} is not the largest {max_token}"
                )
            if max_token is not None and max_token > counter:
                self.violations.append(f"plan {plan}: claim token {max_token} > counter {counter}")
            self.counters[plan] = max(counter, self.counters.get(plan, 0))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except self.psycopg.Error:
                self.errors += 1  # the database restarting: sample again
                time.sleep(0.1)
            except Exception as exc:  # pragma: no cover - a bug in the observer itself
                self.violations.append(f"observer failed: {exc!r}")
                return
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def live_holder(self, plan: str) -> tuple[str, int] | None:
        """(holder session, token) of the plan's live claim, or None."""
        rows = self.query(
            "SELECT holder, fencing_token FROM {s}.claims WHERE project = %s AND plan_id = %s"
            " AND live",
            [self.project, plan],
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def heartbeat_age(self, session_id: str) -> float:
        """Seconds since the session's last heartbeat, by the database's clock."""
        rows = self.query(
            "SELECT extract(epoch FROM clock_timestamp()"
            " - (record->>'last_heartbeat')::timestamptz)"
            " FROM {s}.sessions WHERE project = %s AND session_id = %s",
            [self.project, session_id],
        )
        return float(rows[0][0])

    def history_checks(self) -> list[str]:
        """Checks over the whole claims table after the run: per plan, tokens
        strictly increase in the order the claims were granted, and a lease
        never starts before the previous one was released."""
        problems: list[str] = []
        rows = self.query(
            "SELECT plan_id, fencing_token, claimed_at, released_at, written_at"
            " FROM {s}.claims WHERE project = %s ORDER BY plan_id, claimed_at, fencing_token",
            [self.project],
        )
        previous: dict[str, tuple[int, Any]] = {}
        for plan, token, claimed_at, released_at, _written in rows:
            if plan in previous:
                last_token, last_released = previous[plan]
                if token <= last_token:
                    problems.append(f"plan {plan}: token {token} granted after {last_token}")
                if last_released is not None and claimed_at < last_released:
                    problems.append(f"plan {plan}: token {token} granted before {last_token} ended")
            previous[plan] = (token, released_at)
        return problems
