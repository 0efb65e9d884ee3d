"""The MCP surface through the SDK's in-memory client: tools, schemas, results."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from mcp_server_heartbeat.domain.models import (
    ClaimResult,
    HeartbeatResult,
    ListResult,
    ReleaseResult,
    SessionInfoResult,
)
from mcp_server_heartbeat.mcp.server import build_app

pytestmark = pytest.mark.anyio

TOOLS = {
    "heartbeat": (HeartbeatResult, False, False),
    "claim_plan": (ClaimResult, False, True),
    "wait_for_plan": (ClaimResult, False, True),
    "list_sessions": (ListResult, True, False),
    "release": (ReleaseResult, False, True),
    "session_info": (SessionInfoResult, True, False),
}


async def test_six_tools_with_output_schemas_and_honest_annotations(make_runtime):
    async with Client(build_app(make_runtime())) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == set(TOOLS)
        for name, (model, read_only, destructive) in TOOLS.items():
            tool = tools[name]
            assert tool.output_schema is not None, name
            assert set(tool.output_schema["properties"]) == set(model.model_fields), name
            annotations = tool.annotations
            assert annotations is not None, name
            assert annotations.read_only_hint is read_only, name
            assert annotations.destructive_hint is destructive, name
            assert annotations.open_world_hint is False, name
            assert annotations.idempotent_hint is True, name
            assert tool.description and len(tool.description) > 80, name


async def test_server_info_name_and_version_from_metadata(make_runtime):
    from importlib.metadata import version

    async with Client(build_app(make_runtime())) as client:
        info = client.server_info
        assert info is not None
        assert (info.name, info.version) == ("heartbeat", version("mcp-server-heartbeat"))


async def test_results_validate_against_the_models(make_runtime):
    async with Client(build_app(make_runtime())) as client:
        calls = [
            ("heartbeat", {"activity": "step1", "role": "executor"}),
            ("claim_plan", {"plan_id": "043"}),
            ("claim_plan", {"plan_id": "043"}),
            ("list_sessions", {}),
            ("session_info", {}),
            ("release", {"plan_id": "043", "fencing_token": 1}),
        ]
        outcomes = []
        for name, args in calls:
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, result.content)
            model = TOOLS[name][0].model_validate(result.structured_content)
            text = result.content[0].text
            if name == "list_sessions":
                # A summary and a table for the model; the data once, in structuredContent.
                assert text.startswith("1 session: 1 active; 0 unreadable files")
                assert "mem-session | active |" in text.splitlines()[2]
            else:
                # The same data as compact JSON, for clients that read only text.
                assert json.loads(text) == result.structured_content
                assert "\n" not in text and '": ' not in text  # no indentation, no padding
            outcomes.append(getattr(model, "outcome", None))
        assert outcomes == [None, "claimed", "already_yours", None, None, "released"]


async def test_bad_input_is_a_tool_error_naming_the_rule(make_runtime):
    async with Client(build_app(make_runtime())) as client:
        result = await client.call_tool("claim_plan", {"plan_id": "../etc/passwd"})
        assert result.is_error
        assert 'plan_id "../etc/passwd" (a JSON string) is not accepted' in result.content[0].text
        result = await client.call_tool("heartbeat", {"role": "boss"})
        assert result.is_error
        assert "role" in result.content[0].text
        # The server keeps serving.
        assert not (await client.call_tool("session_info", {})).is_error


async def test_session_info_reports_config_sources_and_heartbeat_health(make_runtime):
    async with Client(build_app(make_runtime())) as client:
        info = SessionInfoResult.model_validate(
            (await client.call_tool("session_info", {})).structured_content
        )
        assert info.tracking_enabled is True
        assert info.session is not None and info.session.relationship == "self"
        assert info.config["root"].source == "flag --root"
        assert info.config["interval"].value == 30
        assert info.config["interval"].source == "default"
        assert info.heartbeat.healthy is True


async def test_disabled_tracking_answers_every_tool(make_runtime):
    async with Client(build_app(make_runtime(enabled=False))) as client:
        for name in ("heartbeat", "claim_plan", "list_sessions", "release"):
            args = {"plan_id": "043"} if name == "claim_plan" else {}
            result = await client.call_tool(name, args)
            assert result.is_error, name
            assert "tracking is disabled" in result.content[0].text
        info = await client.call_tool("session_info", {})
        assert info.structured_content["tracking_enabled"] is False


async def test_client_disconnect_ends_the_session(make_runtime):
    runtime = make_runtime()
    async with Client(build_app(runtime)) as client:
        await client.call_tool("claim_plan", {"plan_id": "043"})
    record = json.loads((runtime.config.dir_path / "mem-session.json").read_text())
    assert (record["end_reason"], record["plan_id"]) == ("disconnect", None)
    assert record["entrypoint"] == "cli"
