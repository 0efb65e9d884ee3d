"""A person asked before force, over real stdio with real server processes: the
holder is a server frozen with SIGSTOP (alive, not proven dead) whose record
says its last heartbeat was 10 minutes ago; the taker is a second server driven
by the SDK's stdio client with an elicitation callback, or by a bare client that
declared no capabilities and must never receive an elicitation request."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters, types

from stdio_client import CONSOLE_SCRIPT, StdioServer, clean_env, wait_until

pytestmark = pytest.mark.slow

FAST = ("--interval", "0.5", "--stale-after", "5")
SESSIONS = Path(".ahrena/workflow/sessions")


def _read(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / SESSIONS / name).read_text())


@pytest.fixture
def stale_holder(tmp_path: Path) -> Iterator[tuple[Path, StdioServer]]:
    """Server ``one`` holds 043 (token 1), frozen, its heartbeat 10 minutes old."""
    root = tmp_path / "project"
    root.mkdir()
    holder = StdioServer(root, "--session-id", "one", *FAST)
    try:
        holder.initialize()
        holder.call("heartbeat", activity="kata-pr-prepare:step3")
        assert holder.call("claim_plan", plan_id="043")["structuredContent"]["fencing_token"] == 1
        os.kill(holder.pid, signal.SIGSTOP)  # alive but silent: stale, never proven dead
        path = root / SESSIONS / "one.json"
        record = json.loads(path.read_text())
        old = datetime.now(UTC) - timedelta(minutes=10)
        record["last_heartbeat"] = old.isoformat().replace("+00:00", "Z")
        if record.get("last_heartbeat_boottime") is not None:  # the step-proof clock too
            record["last_heartbeat_boottime"] -= 600
        path.write_text(json.dumps(record))
        yield root, holder
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.stop()


def _params(root: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=CONSOLE_SCRIPT,
        args=["--session-id", "two", *FAST],
        cwd=str(root),
        env=clean_env(root),
    )


def _claim_state(root: Path) -> tuple[Any, ...]:
    ledger = _read(root, "claims/043.json")
    holder = _read(root, "one.json")
    events = (root / SESSIONS / "events.jsonl").read_text().splitlines()
    claims = [e for e in events if '"claim_' in e]
    return ledger["holder"], ledger["fencing_token"], holder["plan_id"], claims


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (("decline", None), "force_declined"),
        (("accept", {"confirm": True}), "taken_over"),
    ],
)
async def test_person_decides_over_real_stdio(stale_holder, answer, outcome):
    root, _ = stale_holder
    before = _claim_state(root)
    forms: list[str] = []

    async def person(context: Any, params: Any) -> types.ElicitResult:
        forms.append(params.message)
        return types.ElicitResult(action=answer[0], content=answer[1])

    async with Client(_params(root), mode="legacy", elicitation_callback=person) as client:
        result = await client.call_tool("claim_plan", {"plan_id": "043", "force": True})
        got = result.structured_content
        assert got["outcome"] == outcome, got
        if outcome == "force_declined":
            assert _claim_state(root) == before  # ledger, holder record, claim events
            assert got["holder"]["session_id"] == "one"
        else:
            assert (got["takeover_reason"], got["fencing_token"]) == ("forced_stale", 2)
            assert _read(root, "claims/043.json")["holder"] == "two"
    assert len(forms) == 1
    assert "session one" in forms[0] and "'kata-pr-prepare:step3'" in forms[0]
    assert "10 min ago" in forms[0] and "fencing token 1 stops being valid" in forms[0]


def test_client_without_elicitation_never_receives_a_request(stale_holder):
    """A bare client (capabilities {}): today's forced takeover, and every line the
    server wrote is checked for an ``elicitation/create`` request."""
    root, _ = stale_holder
    taker = StdioServer(root, "--session-id", "two", *FAST)
    try:
        taker.initialize()
        taker.send(
            {
                "jsonrpc": "2.0",
                "id": 99,
                "method": "tools/call",
                "params": {"name": "claim_plan", "arguments": {"plan_id": "043", "force": True}},
            }
        )
        seen: list[dict[str, Any]] = []
        while not any(m.get("id") == 99 for m in seen):
            seen.append(json.loads(taker._lines.get(timeout=15)))
        assert [m for m in seen if m.get("method") == "elicitation/create"] == []
        got = seen[-1]["result"]["structuredContent"]
        assert (got["outcome"], got["takeover_reason"]) == ("taken_over", "forced_stale")
    finally:
        taker.stop()


@pytest.mark.anyio
async def test_holder_back_while_the_person_answers_is_not_forced(stale_holder):
    """The frozen holder resumes (SIGCONT) and beats while the form is open: the
    person's yes was for a stale holder, so the live one keeps the plan."""
    root, holder = stale_holder
    old_beat = _read(root, "one.json")["last_heartbeat"]

    async def person(context: Any, params: Any) -> types.ElicitResult:
        os.kill(holder.pid, signal.SIGCONT)
        await anyio.to_thread.run_sync(
            lambda: wait_until(
                lambda: _read(root, "one.json")["last_heartbeat"] != old_beat,
                what="the resumed holder's heartbeat",
            )
        )
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with Client(_params(root), mode="legacy", elicitation_callback=person) as client:
        result = await client.call_tool("claim_plan", {"plan_id": "043", "force": True})
    got = result.structured_content
    assert (got["outcome"], got["holder"]["session_id"]) == ("held_by_other", "one")
    ledger = _read(root, "claims/043.json")
    assert (ledger["holder"], ledger["fencing_token"]) == ("one", 1)
