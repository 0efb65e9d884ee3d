"""Tool arguments: strict types, one truth in schema and server, messages for the agent;
and the protocol details (capabilities, error codes) a client relies on.

Issue "Fault round two", items 4, 5 and 6. Every case is sent through the SDK's
in-memory client to the real MCP layer (``app.build_app``), and validated with
the ``jsonschema`` library against the ``inputSchema`` the server advertises:
a client that validates first and the server must never disagree.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import METHOD_NOT_FOUND
from pydantic import BaseModel

from mcp_server_heartbeat import mcp as mcp_layer
from mcp_server_heartbeat.domain.models import FlagArg, LabelArg
from mcp_server_heartbeat.mcp.server import build_app
from mcp_server_heartbeat.mcp.strict import HeartbeatServer, strict_tool

RESOURCE_NOT_FOUND = -32002  # MCP 2024-11-05 .. 2025-11-25: resource not found

pytestmark = pytest.mark.anyio


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """JSON Schema's ``pattern`` with ECMA-262 semantics for a final ``$``.

    JSON Schema specifies ECMA-262 regular expressions (what JavaScript clients
    such as Claude Code and the Inspector use): ``$`` matches only at the end.
    The ``jsonschema`` library uses Python's ``re``, where ``$`` also matches
    before a final newline, so ``"043\\n"`` would pass there and nowhere else.
    """
    if not validator.is_type(instance, "string"):
        return
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if not re.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = jsonschema.validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})

LONG = "x" * 201
# (arguments, accepted?) per tool: good and bad values, wrong JSON types,
# unknown arguments, bad patterns, limits and their edges.
CASES: dict[str, list[tuple[dict[str, Any], bool]]] = {
    "heartbeat": [
        ({}, True),
        ({"activity": "kata-pr-prepare:step3"}, True),
        ({"activity": "x" * 200}, True),
        ({"activity": "ünïcödé, emoji 🚀 and spaces"}, True),
        ({"activity": None}, True),
        ({"role": "executor"}, True),
        ({"role": None}, True),
        ({"tags": {"kind": "feature", "topics": ["auth", "review-loop"]}}, True),
        ({"tags": {}}, True),
        ({"tags": {"kind": None}}, True),
        ({"tags": None}, True),
        ({"activity": ""}, False),
        ({"activity": "   "}, False),
        ({"activity": LONG}, False),
        ({"activity": "a\nb"}, False),
        ({"activity": "ok\n"}, False),
        ({"activity": "tab\there"}, False),
        ({"activity": "zero\u200bwidth"}, False),
        ({"activity": "bidi\u202eflip"}, False),
        ({"activity": 5}, False),
        ({"activity": True}, False),
        ({"activity": ["a"]}, False),
        ({"role": "boss"}, False),
        ({"role": 1}, False),
        ({"tags": "auth"}, False),
        ({"tags": '{"kind": "feature"}'}, False),
        ({"tags": ["auth"]}, False),
        ({"tags": 3}, False),
        ({"tags": True}, False),
        ({"tags": {"kind": "Feature"}}, False),
        ({"tags": {"kind": 5}}, False),
        ({"tags": {"kind": "k" * 41}}, False),
        ({"tags": {"topics": ["a", "b", "c"]}}, False),
        ({"tags": {"topics": "auth"}}, False),
        ({"tags": {"topics": None}}, False),
        ({"tags": {"topics": ["review_loop"]}}, False),
        ({"tags": {"topics": ["t" * 21]}}, False),
        ({"tags": {"topic": ["auth"]}}, False),
        ({"actvity": "x"}, False),
    ],
    "claim_plan": [
        ({"plan_id": "050"}, True),
        ({"plan_id": "feat-login", "force": False}, True),
        ({"plan_id": "a.b_c-9", "force": True}, True),
        ({"plan_id": "p" * 128}, True),
        ({}, False),
        ({"plan_id": 43}, False),
        ({"plan_id": None}, False),
        ({"plan_id": "050", "force": "yes"}, False),
        ({"plan_id": "050", "force": "true"}, False),
        ({"plan_id": "050", "force": 1}, False),
        ({"plan_id": "050", "force": None}, False),
        ({"plan_id": ""}, False),
        ({"plan_id": "../x"}, False),
        ({"plan_id": ".hidden"}, False),
        ({"plan_id": "a/b"}, False),
        ({"plan_id": "050\n"}, False),
        ({"plan_id": "pl\u0430n"}, False),  # Cyrillic a
        ({"plan_id": "p" * 129}, False),
        ({"plan_id": "050", "forced": True}, False),
    ],
    "wait_for_plan": [  # each accepted case claims the free plan at once
        ({"plan_id": "050"}, True),
        ({"plan_id": "050", "timeout_s": 0}, True),
        ({"plan_id": "050", "timeout_s": 1.5}, True),
        ({"plan_id": "050", "timeout_s": 300}, True),
        ({}, False),
        ({"plan_id": "../x"}, False),
        ({"plan_id": "050", "timeout_s": -1}, False),
        ({"plan_id": "050", "timeout_s": 300.5}, False),
        ({"plan_id": "050", "timeout_s": 3600}, False),
        ({"plan_id": "050", "timeout_s": "10"}, False),
        ({"plan_id": "050", "timeout_s": True}, False),
        ({"plan_id": "050", "timeout_s": None}, False),
        ({"plan_id": "050", "timeout": 10}, False),
    ],
    "release": [
        ({}, True),
        ({"plan_id": "050"}, True),
        ({"plan_id": None}, True),
        ({"reason": "done"}, True),
        ({"fencing_token": 1}, True),
        ({"fencing_token": 1.0}, True),  # JSON Schema: an integer-valued number is an integer
        ({"fencing_token": 2**40}, True),
        ({"fencing_token": None}, True),
        ({"fencing_token": "1"}, False),
        ({"fencing_token": "null"}, False),
        ({"fencing_token": True}, False),
        ({"fencing_token": 0}, False),
        ({"fencing_token": -3}, False),
        ({"fencing_token": 1.5}, False),
        ({"fencing_tokne": 1}, False),
        ({"reason": ""}, False),
        ({"reason": LONG}, False),
        ({"reason": 7}, False),
        ({"reason": "line\nbreak"}, False),
        ({"plan_id": "a/b"}, False),
        ({"plan_id": 50}, False),
    ],
    "list_sessions": [
        ({}, True),
        ({"status": "active"}, True),
        ({"status": None}, True),
        ({"plan_id": "050"}, True),
        ({"branch": "feature/x-y"}, True),
        ({"branch": "b" * 256}, True),
        ({"include_ended": True}, True),
        ({"status": "gone"}, False),
        ({"status": 1}, False),
        ({"include_ended": "yes"}, False),
        ({"include_ended": 1}, False),
        ({"include_ended": None}, False),
        ({"branch": ""}, False),
        ({"branch": "a\tb"}, False),
        ({"branch": "b" * 257}, False),
        ({"plan_id": "../"}, False),
        ({"plan_id": 5}, False),
        ({"limit": 3}, False),
    ],
    "session_info": [
        ({}, True),
        ({"verbose": True}, False),
        ({"x": None}, False),
    ],
}
ALL = [(tool, args, ok) for tool, cases in CASES.items() for args, ok in cases]


async def _schemas(client: Client) -> dict[str, dict[str, Any]]:
    return {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}


async def _server_accepts(client: Client, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    result = await client.call_tool(tool, args)
    text = result.content[0].text if result.content else ""
    if not result.is_error and tool in ("claim_plan", "wait_for_plan"):
        await client.call_tool("release", {})  # one plan per session: next case starts clean
    return not result.is_error, text


async def test_schema_and_server_agree_on_every_argument(make_runtime) -> None:
    async with Client(build_app(make_runtime())) as client:
        schemas = await _schemas(client)
        assert set(schemas) == set(CASES)
        disagreements = []
        for tool, args, expected in ALL:
            EcmaValidator.check_schema(schemas[tool])
            by_schema = EcmaValidator(schemas[tool]).is_valid(args)
            by_server, text = await _server_accepts(client, tool, args)
            if not by_schema == by_server == expected:
                disagreements.append((tool, args, expected, by_schema, by_server, text[:200]))
        assert not disagreements, "\n".join(map(repr, disagreements))


async def test_a_project_tag_vocabulary_is_in_the_schema(make_runtime) -> None:
    runtime = make_runtime()
    runtime.service.tag_kinds = ["feature", "bugfix", "Not-Kebab"]
    async with Client(build_app(runtime)) as client:
        schema = (await _schemas(client))["heartbeat"]
        validator = EcmaValidator(schema)
        for tags, expected in [({"kind": "bugfix"}, True), ({"kind": "chore"}, False)]:
            by_server, text = await _server_accepts(client, "heartbeat", {"tags": tags})
            assert validator.is_valid({"tags": tags}) == by_server == expected, (tags, text)


async def test_the_reported_coercions_are_refused_and_nothing_changes(make_runtime) -> None:
    """The issue's cases: "yes"/1 for a bool, "1" for an int; "null" for null."""
    async with Client(build_app(make_runtime())) as client:
        for tool, args in [
            ("claim_plan", {"plan_id": "050", "force": "yes"}),
            ("claim_plan", {"plan_id": "050", "force": 1}),
            ("release", {"fencing_token": "1"}),
            ("release", {"fencing_token": "null"}),
        ]:
            result = await client.call_tool(tool, args)
            assert result.is_error, (tool, args)
        held = await client.call_tool("claim_plan", {"plan_id": "050"})
        assert held.structured_content["outcome"] == "claimed"
        token = held.structured_content["fencing_token"]
        # "null" is not null: the token check is not skipped, the plan stays held.
        refused = await client.call_tool("release", {"fencing_token": "null"})
        assert refused.is_error
        info = await client.call_tool("session_info", {})
        assert info.structured_content["session"]["plan_id"] == "050"
        released = await client.call_tool("release", {"fencing_token": token})
        assert released.structured_content["outcome"] == "released"


# -- item 5: every refusal is written for the agent ------------------------------

PYDANTIC_TEXT = ("validation error for", "errors.pydantic.dev", "Arguments", "input_value=")


@pytest.mark.parametrize(
    ("tool", "args", "says"),
    [
        (
            "claim_plan",
            {"plan_id": "050", "force": "yes"},
            ['force "yes" (a JSON string) is not accepted', "true or false"],
        ),
        ("claim_plan", {"plan_id": 43}, ["plan_id 43 (a JSON integer)", "ASCII letters"]),
        (
            "release",
            {"fencing_token": "1"},
            ['fencing_token "1" (a JSON string)', "a whole number >= 1"],
        ),
        ("release", {"fencing_token": 0}, ["fencing_token 0", "a whole number >= 1"]),
        (
            "release",
            {"fencing_tokne": 3},
            ["unknown argument 'fencing_tokne'", "plan_id, reason, fencing_token"],
        ),
        ("claim_plan", {}, ["argument 'plan_id' is missing", "ASCII letters"]),
        ("heartbeat", {"activity": LONG}, ["activity", "(a JSON string)", "at most 200"]),
        ("heartbeat", {"activity": "a\nb"}, ['activity "a\\nb"', "one line"]),
        ("heartbeat", {"role": "boss"}, ['role "boss"', '"executor"']),
        ("list_sessions", {"include_ended": 1}, ["include_ended 1", "true or false"]),
        ("list_sessions", {"status": "gone"}, ['status "gone"', '"active"']),
        ("heartbeat", {"tags": ["auth"]}, ["tags must be an object like"]),
    ],
)
async def test_refusals_name_argument_value_rule_and_what_is_accepted(
    make_runtime, tool: str, args: dict[str, Any], says: list[str]
) -> None:
    async with Client(build_app(make_runtime())) as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    text = result.content[0].text
    for fragment in says:
        assert fragment in text, text
    for raw in PYDANTIC_TEXT:
        assert raw not in text, text
    assert "\n" not in text, text


async def test_every_refused_case_gets_a_message_without_pydantic_text(make_runtime) -> None:
    async with Client(build_app(make_runtime())) as client:
        for tool, args, ok in ALL:
            if ok:
                continue
            accepted, text = await _server_accepts(client, tool, args)
            assert not accepted
            assert any(repr(k) in text or k in text for k in args) or "missing" in text, text
            assert re.search(r"accepted|must be|use ", text), text
            assert not any(raw in text for raw in PYDANTIC_TEXT), text
            assert len(text) < 1500, text


async def test_long_values_are_shortened_in_messages(make_runtime) -> None:
    async with Client(build_app(make_runtime())) as client:
        result = await client.call_tool("claim_plan", {"plan_id": "p" * 10_000})
    text = result.content[0].text
    assert result.is_error and "..." in text and len(text) < 600, text


# -- item 6: protocol details -----------------------------------------------------


async def test_no_prompts_capability_without_prompts(make_runtime) -> None:
    async with Client(build_app(make_runtime())) as client:
        capabilities = client.server_capabilities
        assert capabilities.prompts is None
        assert capabilities.tools is not None and capabilities.resources is not None


async def test_prompts_get_answers_method_not_found_without_a_traceback(
    make_runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(build_app(make_runtime())) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("nope")
        assert caught.value.error.code == METHOD_NOT_FOUND
        with pytest.raises(MCPError) as caught:
            await client.list_prompts()
        assert caught.value.error.code == METHOD_NOT_FOUND
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


@pytest.mark.parametrize(
    "uri",
    [
        "heartbeat://sessions/no-such-session",
        "heartbeat://plans/no-such-plan",
        "heartbeat://nothing-here",
    ],
)
async def test_unknown_resource_answers_resource_not_found(
    make_runtime, caplog: pytest.LogCaptureFixture, uri: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(build_app(make_runtime())) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource(uri)
    assert caught.value.error.code == RESOURCE_NOT_FOUND
    assert caught.value.error.data == {"uri": uri}
    assert not [r for r in caplog.records if r.exc_info], caplog.text


MCP_PACKAGE = Path(mcp_layer.__file__).parent
OWN = {"self", "os"}  # our own private members; ``os._exit``


def private_reads(path: Path) -> list[str]:
    """Every ``x._name`` (or ``getattr(x, "_name")``) in the module's code, not its
    text, where ``x`` is not ``self`` or ``os``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        owner, name = None, ""
        if isinstance(node, ast.Attribute):
            owner, name = ast.unparse(node.value), node.attr
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "getattr"
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
        ):
            owner, name = ast.unparse(node.args[0]), str(ast.literal_eval(node.args[1]))
        if name.startswith("_") and not name.startswith("__") and owner not in OWN:
            found.append(f"{owner}.{name}")
    return found


def test_the_mcp_layer_uses_no_sdk_internals_outside_stdio_lines() -> None:
    """Item 7: tools, capabilities and errors ride on the SDK's public API; the one
    private use (answering malformed stdin lines) is in ``stdio_lines.py`` alone.
    Before: ``strict.py`` read ``app._tool_manager`` and
    ``app._lowlevel_server._request_handlers``."""
    found = {
        path.name: private_reads(path)
        for path in MCP_PACKAGE.glob("*.py")
        if path.name != "stdio_lines.py"
    }
    assert not {name: hits for name, hits in found.items() if hits}, found
    assert private_reads(MCP_PACKAGE / "stdio_lines.py") == ["app._lowlevel_server"]


async def test_strict_tools_are_registered_through_the_constructor(make_runtime) -> None:
    """The strict argument model is what the server runs, not a patch applied later:
    a tool built by ``strict_tool`` refuses an unknown argument and a coerced value
    on a bare ``MCPServer`` too (no override, no middleware)."""

    def probe(flag: FlagArg = False, note: LabelArg | None = None) -> str:
        return f"{flag} {note!r}"

    app: MCPServer[Any] = MCPServer("probe", tools=[strict_tool(probe)])
    async with Client(app) as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.input_schema["additionalProperties"] is False
        unknown = await client.call_tool("probe", {"flga": True})
        coerced = await client.call_tool("probe", {"flag": "true"})
        verbatim = await client.call_tool("probe", {"note": "null"})
    assert unknown.is_error and coerced.is_error
    assert not verbatim.is_error and verbatim.content[0].text == "False 'null'"


@pytest.mark.slow
def test_over_real_stdio_capabilities_and_error_codes(tmp_path) -> None:
    """What Claude Code records (``hasPrompts``) and sees, from the real console script."""
    from stdio_client import StdioServer

    root = tmp_path / "project"
    root.mkdir()
    server = StdioServer(root)
    try:
        capabilities = server.initialize()["capabilities"]
        assert "prompts" not in capabilities and "tools" in capabilities
        got = server.request("prompts/get", {"name": "nope"})
        assert got["error"]["code"] == METHOD_NOT_FOUND, got
        read = server.request("resources/read", {"uri": "heartbeat://sessions/nope"})
        assert read["error"]["code"] == RESOURCE_NOT_FOUND, read
        refused = server.call("claim_plan", plan_id="050", force="yes")
        assert refused["isError"] is True
        assert 'force "yes" (a JSON string) is not accepted' in refused["content"][0]["text"]
        server.close_stdin()
        assert server.wait() == 0
        assert "Traceback" not in server.stderr(), server.stderr()
    finally:
        server.stop()


class Out(BaseModel):
    n: int


async def test_a_crash_is_not_reported_as_a_refused_argument() -> None:
    """Only the arguments' ValidationError is rewritten; a result that fails its own
    output schema (a ValidationError inside the SDK's crash wrapper) stays a crash."""

    def broken(flag: bool = False) -> Out:
        return {"n": "not a number"}  # type: ignore[return-value]

    app = HeartbeatServer("probe", tools=[strict_tool(broken)])
    async with Client(app) as client:
        crashed = await client.call_tool("broken", {})
        refused = await client.call_tool("broken", {"flag": "yes"})
    assert crashed.is_error and "is not accepted" not in crashed.content[0].text
    assert refused.is_error and 'flag "yes" (a JSON string)' in refused.content[0].text
