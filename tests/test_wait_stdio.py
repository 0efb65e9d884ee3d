"""wait_for_plan over real stdio servers (issue 12 part 2), directory and PostgreSQL.

Each session is its own server process; the queue lives in the store, so the
order holds across processes. Checked: two waiters are granted a released
plan in arrival order, each within a second of the release (event-log
timestamps, the store's clock); progress notifications arrive when the
request carries a progressToken; the waiting server keeps beating and
answers other tools; a wait cancelled by ``notifications/cancelled`` leaves
the queue and never holds the plan; a waiter whose session ended is skipped.
The PostgreSQL variants need ``HEARTBEAT_TEST_DSN`` (tests/pg_support.py).
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server_heartbeat.store import Store
from mcp_server_heartbeat.store.directory import DirectoryStore
from stdio_client import StdioServer, clean_env, wait_until

FAST = ("--interval", "0.5", "--stale-after", "5")
GRANT_WITHIN_S = 1.0


class Backend:
    """Where the servers keep their records: env for the servers, a store to read."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = root
        self.kind = kind
        self.env: dict[str, str] = {}
        self._cleanup: list[Any] = []
        if kind == "directory":
            self.store: Store = DirectoryStore(root / ".ahrena/workflow/sessions")
            return
        from pg_support import drop_schema, random_schema, test_dsn

        dsn = test_dsn()  # skips without HEARTBEAT_TEST_DSN (fails under CI=true)
        from mcp_server_heartbeat.store.postgres import PostgresStore

        schema, project = random_schema(), f"wait-{uuid.uuid4().hex[:8]}"
        self.env = {"HEARTBEAT_STORE": dsn, "HEARTBEAT_PROJECT": project}
        self.env["HEARTBEAT_SCHEMA"] = schema
        store = PostgresStore(dsn, project, schema=schema)
        store.prepare()
        self.store = store
        self._cleanup = [store.close, lambda: drop_schema(dsn, schema)]

    def close(self) -> None:
        for step in self._cleanup:
            step()

    def waiters(self, plan_id: str) -> list[str]:
        ledger = self.store.read_claim(plan_id)
        return [] if ledger is None else [w.session_id for w in ledger.waiters]

    def holder(self, plan_id: str) -> str | None:
        ledger = self.store.read_claim(plan_id)
        return None if ledger is None else ledger.holder

    def events(self, plan_id: str) -> list[tuple[str, str, Any]]:
        return [
            (e.event, e.session_id, e.at) for e in self.store.read_events() if e.plan_id == plan_id
        ]


@pytest.fixture(params=["directory", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    root = tmp_path / "project"
    root.mkdir()
    made = Backend(root, request.param)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def servers() -> Iterator[list[StdioServer]]:
    started: list[StdioServer] = []
    yield started
    for server in started:
        server.stop()


class Waiting:
    """A tools/call of wait_for_plan sent without waiting for its answer."""

    def __init__(self, server: StdioServer, plan_id: str, timeout_s: float = 60) -> None:
        self.server = server
        self.request_id = 1000 + server.pid % 1000
        self.progress: list[dict[str, Any]] = []
        self._answer: dict[str, Any] | None = None
        server.send(
            {
                "jsonrpc": "2.0",
                "id": self.request_id,
                "method": "tools/call",
                "params": {
                    "name": "wait_for_plan",
                    "arguments": {"plan_id": plan_id, "timeout_s": timeout_s},
                    "_meta": {"progressToken": f"wait-{self.request_id}"},
                },
            }
        )

    def poll(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The answer if it came (reading progress notifications meanwhile)."""
        deadline = time.monotonic() + timeout
        while self._answer is None:
            try:
                line = self.server._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            message = json.loads(line)
            if message.get("method") == "notifications/progress":
                self.progress.append(message["params"])
            elif message.get("id") == self.request_id:
                self._answer = message["result"]
        return self._answer

    def answer(self, timeout: float = 15.0) -> dict[str, Any]:
        result = self.poll(timeout)
        assert result is not None, f"no answer to wait_for_plan: {self.server.stderr()}"
        return result

    def cancel(self) -> None:
        self.server.send(
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": self.request_id, "reason": "test"},
            }
        )


def start(backend: Backend, servers: list[StdioServer], session_id: str) -> StdioServer:
    env = clean_env(backend.root, **backend.env)
    server = StdioServer(backend.root, "--session-id", session_id, *FAST, env=env)
    servers.append(server)
    server.initialize()
    return server


def granted_after_release(backend: Backend, plan_id: str) -> list[tuple[str, float]]:
    """For each grant that followed a release: (grantee, seconds after the release)."""
    out = []
    released_at = None
    for kind, session_id, at in backend.events(plan_id):
        if kind == "claim_released":
            released_at = at
        elif kind in ("claim_granted", "claim_taken_over") and released_at is not None:
            out.append((session_id, (at - released_at).total_seconds()))
            released_at = None
    return out


def test_two_waiters_are_granted_in_arrival_order_within_a_second(backend, servers):
    holder = start(backend, servers, "holder")
    assert holder.call("claim_plan", plan_id="043")["structuredContent"]["outcome"] == "claimed"
    first_server = start(backend, servers, "first")
    second_server = start(backend, servers, "second")
    first = Waiting(first_server, "043")
    wait_until(lambda: backend.waiters("043") == ["first"], what="first queued")
    second = Waiting(second_server, "043")
    wait_until(lambda: backend.waiters("043") == ["first", "second"], what="second queued")

    # While waiting, the server beats and answers other tools (no mutex held).
    beat = backend.store.read_session("second").last_heartbeat
    wait_until(lambda: backend.store.read_session("second").last_heartbeat > beat, what="a beat")
    listed = second_server.call("list_sessions")["structuredContent"]["sessions"]
    assert {view["session_id"] for view in listed} == {"holder", "first", "second"}
    assert first.poll(0.5) is None and second.poll() is None

    holder.call("release", plan_id="043", reason="done")
    got = first.answer()["structuredContent"]
    assert (got["outcome"], got["claimed"], got["fencing_token"]) == ("claimed", True, 2)
    assert got["waited_s"] > 0
    assert second.poll(0.5) is None  # still waiting: the plan is first's
    first_server.call("release", plan_id="043", reason="done")
    then = second.answer()["structuredContent"]
    assert (then["outcome"], then["fencing_token"]) == ("claimed", 3)

    grants = granted_after_release(backend, "043")
    assert [who for who, _ in grants] == ["first", "second"]
    assert all(0 <= delay < GRANT_WITHIN_S for _, delay in grants), grants
    assert first.progress, "progress notifications were asked for (progressToken)"
    assert all(p["progressToken"] == f"wait-{first.request_id}" for p in first.progress)
    assert "Waiting for plan 043" in first.progress[-1]["message"]
    assert backend.waiters("043") == []


def test_a_cancelled_wait_never_holds_the_plan_and_the_next_waiter_gets_it(backend, servers):
    holder = start(backend, servers, "holder")
    holder.call("claim_plan", plan_id="043")
    quitter_server = start(backend, servers, "quitter")
    patient_server = start(backend, servers, "patient")
    quitter = Waiting(quitter_server, "043")
    wait_until(lambda: backend.waiters("043") == ["quitter"], what="quitter queued")
    patient = Waiting(patient_server, "043")
    wait_until(lambda: backend.waiters("043") == ["quitter", "patient"], what="patient queued")
    quitter.cancel()
    wait_until(lambda: backend.waiters("043") == ["patient"], what="the cancelled entry gone")
    holder.call("release", plan_id="043")
    got = patient.answer()["structuredContent"]
    assert got["outcome"] == "claimed"
    assert quitter.poll(0.3) is None  # a cancelled request is never answered
    assert "quitter" not in {who for _, who, _ in backend.events("043")}
    info = quitter_server.call("session_info")["structuredContent"]["session"]
    assert info["plan_id"] is None  # the server still works, holding nothing


def test_a_waiter_whose_session_ended_is_skipped(backend, servers):
    holder = start(backend, servers, "holder")
    holder.call("claim_plan", plan_id="043")
    gone_server = start(backend, servers, "gone")
    next_server = start(backend, servers, "next")
    Waiting(gone_server, "043")
    wait_until(lambda: backend.waiters("043") == ["gone"], what="gone queued")
    waiting = Waiting(next_server, "043")
    wait_until(lambda: backend.waiters("043") == ["gone", "next"], what="next queued")
    gone_server.close_stdin()  # the session ends while it waits
    assert gone_server.wait() == 0
    holder.call("release", plan_id="043")
    got = waiting.answer()["structuredContent"]
    assert got["outcome"] == "claimed"
    assert backend.holder("043") == "next"
    assert "gone" not in {who for _, who, _ in backend.events("043")}


def test_a_timed_out_wait_returns_the_holder_and_keeps_the_place(backend, servers):
    holder = start(backend, servers, "holder")
    holder.call("claim_plan", plan_id="043")
    waiter = start(backend, servers, "waiter")
    got = waiter.call("wait_for_plan", plan_id="043", timeout_s=0.5)["structuredContent"]
    assert (got["outcome"], got["claimed"], got["holder"]["session_id"]) == (
        "held_by_other",
        False,
        "holder",
    )
    assert (got["queue_position"], got["retry_after_s"]) == (1, 0.0)
    assert got["waited_s"] >= 0.5
    assert "call wait_for_plan again" in got["message"]
    assert backend.waiters("043") == ["waiter"]  # kept for the grace
    other = start(backend, servers, "other")
    holder.call("release", plan_id="043")
    refused = other.call("claim_plan", plan_id="043")["structuredContent"]
    assert (refused["outcome"], refused["holder"]["session_id"]) == ("reserved", "waiter")
    again = waiter.call("wait_for_plan", plan_id="043", timeout_s=5)["structuredContent"]
    assert again["outcome"] == "claimed"
