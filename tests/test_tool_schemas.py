"""The committed tool schemas (mcp/tool_schemas.json) are what the models generate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mcp_server_heartbeat.mcp import schema_file, schemas
from mcp_server_heartbeat.mcp.tools import TAGS_SCHEMA, build_tools, tags_schema


def test_the_committed_schemas_are_what_the_models_generate():
    committed = json.loads(schemas.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == schema_file.generate(), (
        "tool_schemas.json is out of date: run python -m mcp_server_heartbeat.mcp.schema_file"
    )


@pytest.mark.parametrize("kinds", [None, ["feature", "bugfix", "review"]])
def test_tools_from_the_file_equal_tools_generated_now(kinds):
    tags = TAGS_SCHEMA if kinds is None else tags_schema(kinds)
    with schemas.generating():
        fresh = {tool.name: tool for tool in build_tools(tags)}
    built = {tool.name: tool for tool in build_tools(tags)}
    assert built.keys() == fresh.keys()
    for name, tool in built.items():
        assert tool.parameters == fresh[name].parameters, name
        assert tool.output_schema == fresh[name].output_schema, name
        assert tool.fn_metadata.output_model is fresh[name].fn_metadata.output_model, name
        assert tool.fn_metadata.wrap_output == fresh[name].fn_metadata.wrap_output, name
        # Built without Tool.from_function: every other field is what it sets.
        fields = {"fn", "fn_metadata"}
        assert tool.model_dump(exclude=fields) == fresh[name].model_dump(exclude=fields), name
        assert tool.fn is fresh[name].fn or tool.fn.__name__ == fresh[name].fn.__name__
        args = tool.fn_metadata.arg_model
        assert args.model_json_schema() == fresh[name].fn_metadata.arg_model.model_json_schema()
        assert args.model_config["extra"] == "forbid" and args.model_config["strict"], name


def test_every_tool_is_in_the_file_and_current():
    for tool in build_tools(TAGS_SCHEMA):
        digest = tool.fn_metadata.fingerprint
        assert digest is not None and schemas.cached(tool.name, digest) is not None, tool.name


def test_a_changed_tool_is_not_served_from_the_file(monkeypatch):
    """A tool whose code changed since the file was generated gets fresh schemas."""
    from mcp_server_heartbeat.domain.models import ClaimResult

    before = {tool.name: tool for tool in build_tools(TAGS_SCHEMA)}["claim_plan"]
    monkeypatch.setattr(ClaimResult, "__doc__", "Changed since the file was generated.")
    after = {tool.name: tool for tool in build_tools(TAGS_SCHEMA)}["claim_plan"]
    assert after.fn_metadata.fingerprint != before.fn_metadata.fingerprint
    assert schemas.cached("claim_plan", after.fn_metadata.fingerprint) is None
    assert after.output_schema["description"] == "Changed since the file was generated."


def test_fingerprints_are_stable_across_processes():
    """No object address or other per-process value leaks into a fingerprint."""
    code = (
        "from mcp_server_heartbeat.mcp.tools import TAGS_SCHEMA, build_tools\n"
        "print({t.name: t.fn_metadata.fingerprint for t in build_tools(TAGS_SCHEMA)})"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(runs) == 1
    assert runs.pop().strip() == repr(
        {t.name: t.fn_metadata.fingerprint for t in build_tools(TAGS_SCHEMA)}
    )
