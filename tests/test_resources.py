"""The MCP resources (issue 4), read through the SDK's in-memory client:
``heartbeat://sessions``, ``heartbeat://sessions/{session_id}`` and
``heartbeat://plans/{plan_id}``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from conftest import FakeClock, FakeProbe, ServiceFactory
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.mcp.server import build_app
from mcp_server_heartbeat.runtime import Runtime
from mcp_server_heartbeat.session.heartbeat import HeartbeatMonitor
from mcp_server_heartbeat.session.service import SessionService


def app_for(service: SessionService, root: Path) -> object:
    config = resolve_config(Flags(root=str(root), dir=str(service.store.location)), {}, root)
    runtime = Runtime(
        config=config,
        service=service,
        monitor=HeartbeatMonitor(),
        handle_signals=False,
        watch_parent=False,
    )
    return build_app(runtime)


async def read_json(client: Client, uri: str) -> object:
    result = await client.read_resource(uri)
    (content,) = result.contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)  # type: ignore[union-attr]


@pytest.fixture
def scene(
    make_service: ServiceFactory, clock: FakeClock, probe: FakeProbe
) -> dict[str, SessionService]:
    """me holds 043 after taking it over from dead d; other holds 044; gone ended."""
    me = make_service("me", pid=101)
    other = make_service("other", pid=102, client_pid=2)
    dead = make_service("d", pid=103)
    gone = make_service("gone", pid=104)
    dead.claim("043")
    other.claim("044")
    gone.touch()  # an agent tool call: not a health check, so its end keeps the record
    gone.end("disconnect")
    clock.advance(10)
    probe.dead.add(103)
    assert me.claim("043").outcome == "taken_over"
    return {"me": me, "other": other, "dead": dead}


@pytest.mark.anyio
async def test_resources_are_listed(scene: dict[str, SessionService], tmp_path: Path) -> None:
    async with Client(app_for(scene["me"], tmp_path)) as client:  # type: ignore[arg-type]
        listed = await client.list_resources()
        templates = await client.list_resource_templates()
    assert [str(r.uri) for r in listed.resources] == ["heartbeat://sessions"]
    assert {t.uri_template for t in templates.resource_templates} == {
        "heartbeat://sessions/{session_id}",
        "heartbeat://plans/{plan_id}",
    }


@pytest.mark.anyio
async def test_sessions_resource_lists_every_session(
    scene: dict[str, SessionService], tmp_path: Path
) -> None:
    async with Client(app_for(scene["me"], tmp_path)) as client:  # type: ignore[arg-type]
        data = await read_json(client, "heartbeat://sessions")
    assert isinstance(data, dict)
    statuses = {s["session_id"]: (s["status"], s["relationship"]) for s in data["sessions"]}
    assert statuses == {
        "me": ("active", "self"),
        "other": ("active", "other_active"),
        "d": ("dead", "dead"),
        "gone": ("ended", "ended"),
    }
    assert data["unreadable"] == []


@pytest.mark.anyio
async def test_session_resource_shows_one_session(
    scene: dict[str, SessionService], tmp_path: Path
) -> None:
    async with Client(app_for(scene["me"], tmp_path)) as client:  # type: ignore[arg-type]
        mine = await read_json(client, "heartbeat://sessions/me")
        other = await read_json(client, "heartbeat://sessions/other")
        with pytest.raises(MCPError, match="no session nobody"):
            await client.read_resource("heartbeat://sessions/nobody")
    assert isinstance(mine, dict) and isinstance(other, dict)
    assert (mine["plan_id"], mine["fencing_token"], mine["relationship"]) == ("043", 2, "self")
    assert (other["plan_id"], other["status"]) == ("044", "active")


@pytest.mark.anyio
async def test_plan_resource_has_holder_token_transitions_and_events(
    scene: dict[str, SessionService], tmp_path: Path
) -> None:
    async with Client(app_for(scene["me"], tmp_path)) as client:  # type: ignore[arg-type]
        plan = await read_json(client, "heartbeat://plans/043")
        with pytest.raises(MCPError, match="never claimed"):
            await client.read_resource("heartbeat://plans/999")
    assert isinstance(plan, dict)
    assert (plan["holder"], plan["holder_status"], plan["fencing_token"]) == ("me", "active", 2)
    assert plan["claimed"] is True
    assert plan["transitions"] == 2  # granted to d, taken over by me
    assert [(e["event"], e["session_id"], e["fencing_token"]) for e in plan["events"]] == [
        ("claim_granted", "d", 1),
        ("claim_taken_over", "me", 2),
    ]
    assert plan["events"][1]["reason"] == "proof_of_death"
    assert plan["events"][1]["previous_holder"] == "d"


@pytest.mark.anyio
async def test_reading_resources_changes_nothing(
    scene: dict[str, SessionService], tmp_path: Path, heartbeat_dir: Path
) -> None:
    before = {p: p.read_bytes() for p in sorted(heartbeat_dir.rglob("*")) if p.is_file()}
    async with Client(app_for(scene["me"], tmp_path)) as client:  # type: ignore[arg-type]
        for uri in ("heartbeat://sessions", "heartbeat://sessions/other", "heartbeat://plans/043"):
            await client.read_resource(uri)
        after = {p: p.read_bytes() for p in sorted(heartbeat_dir.rglob("*")) if p.is_file()}
    # the background heartbeat may refresh "me"; reading changes nothing else
    changed = {p.name for p in before if before[p] != after.get(p)}
    assert changed <= {"me.json"} and set(after) == set(before)
