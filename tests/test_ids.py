"""Ids as types: ``PlanId`` and ``SessionId`` carry the rule into the input
schemas and are validated once, at the edge; the store keeps only its
path-safety check.

Issue "store seam", item 8.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import BaseModel, TypeAdapter, ValidationError

import mcp_server_heartbeat
from mcp_server_heartbeat.cli.hooks import HookInput
from mcp_server_heartbeat.domain.errors import InvalidInputError
from mcp_server_heartbeat.domain.ids import PlanId, SessionId
from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord
from mcp_server_heartbeat.domain.validation import ID_PATTERN
from mcp_server_heartbeat.mcp.server import build_app
from mcp_server_heartbeat.store.directory.store import DirectoryStore

PACKAGE = Path(mcp_server_heartbeat.__file__).parent
ID_SCHEMA = {"type": "string", "pattern": f"^{ID_PATTERN}$", "maxLength": 128}
BAD = ["../x", "a/b", ".hidden", "", "x" * 129, "é", "a\x00b", "-lead", "043\n"]

EDGES = {
    "cli/history.py",  # the PLAN argument of `history`
    "host/identity.py",  # --session-id and CLAUDE_CODE_SESSION_ID
    "mcp/resources.py",  # heartbeat://sessions/{session_id}, heartbeat://plans/{plan_id}
}
"""The edges that read an id without pydantic, and so call ``validate_id``."""


@pytest.mark.parametrize("kind", [PlanId, SessionId])
def test_the_types_carry_the_rule_into_json_schema(kind: Any) -> None:
    adapter = TypeAdapter(kind)
    assert adapter.json_schema() == ID_SCHEMA
    assert adapter.validate_python("feat-login.v2_1") == "feat-login.v2_1"
    for bad in [*BAD, 43, None]:
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
    with pytest.raises(ValidationError):
        adapter.validate_json("43")  # strict: a JSON number is not an id


@pytest.mark.anyio
async def test_every_plan_id_argument_advertises_the_rule(make_runtime) -> None:
    async with Client(build_app(make_runtime())) as client:
        tools = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
    assert (
        tools["claim_plan"]["properties"]["plan_id"] | ID_SCHEMA
        == (tools["claim_plan"]["properties"]["plan_id"])
    )
    for name in ("release", "list_sessions"):
        (as_string, as_null) = tools[name]["properties"]["plan_id"]["anyOf"]
        assert (as_string, as_null) == (ID_SCHEMA, {"type": "null"}), name


def _calls_of(path: Path, function: str) -> int:
    tree = ast.parse(path.read_text())
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == function
    )


def test_ids_are_checked_at_the_edges_only() -> None:
    """``validate_id`` is called where an id enters without pydantic, nowhere below.
    Before: 19 call sites, among them the service (5), the store (6), observe,
    the hooks (2) behind their own edges."""
    callers = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := _calls_of(path, "validate_id")) and path.name != "validation.py"
    }
    assert set(callers) == EDGES, callers
    assert sum(callers.values()) == 5, callers
    # The stores assert name safety themselves (store/names.py); nothing above them does.
    safety = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _calls_of(path, "safe_stem")
    }
    assert safety and all(name.startswith("store/") for name in safety), safety


def test_a_hook_payload_is_the_edge_for_its_session_id() -> None:
    """The payload model refuses a bad id itself; the hooks do not check again."""
    with pytest.raises(ValidationError):
        HookInput.model_validate({"session_id": "../etc/passwd"})
    with pytest.raises(ValidationError):
        HookInput.model_validate({"session_id": 7})
    assert HookInput.model_validate({"session_id": "abc-123"}).session_id == "abc-123"


@pytest.mark.parametrize("bad", BAD)
def test_the_store_refuses_a_name_that_is_not_a_safe_file_name(tmp_path: Path, bad: str) -> None:
    """A caller that skipped the edge still cannot name a file outside the
    directory (design invariant 4): refused with the rule, nothing written."""
    directory = tmp_path / "sessions"
    store = DirectoryStore(directory)
    store.prepare()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    calls = [
        lambda: store.read_session(bad),
        lambda: store.delete_session(bad),
        lambda: store.read_claim(bad),
        lambda: store.write_session(SessionRecord(session_id=bad)),
        lambda: store.write_claim(ClaimRecord(plan_id=bad, fencing_token=1)),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError, match=r"is not accepted: use 1 to 128"):
            call()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


class _Probe(BaseModel):
    plan_id: PlanId
    session_id: SessionId


def test_messages_about_ids_stay_written_for_the_agent(make_runtime) -> None:
    """At the tool edge the refusal names the argument, the value, the rule."""
    import anyio

    async def refuse() -> str:
        async with Client(build_app(make_runtime())) as client:
            result = await client.call_tool("claim_plan", {"plan_id": "../x"})
        assert result.is_error
        return result.content[0].text

    text = anyio.run(refuse)
    assert 'plan_id "../x" (a JSON string) is not accepted' in text, text
    assert "1 to 128 ASCII letters" in text, text
    assert _Probe.model_json_schema()["properties"]["plan_id"]["pattern"] == f"^{ID_PATTERN}$"
