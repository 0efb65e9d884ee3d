"""The committed tool schemas (mcp/tool_schemas.json) are what the models generate."""

from __future__ import annotations

import json

import pytest

from mcp_server_heartbeat.mcp import schema_file, schemas
from mcp_server_heartbeat.mcp.server import TAGS_SCHEMA, _tools, tags_schema


def test_the_committed_schemas_are_what_the_models_generate():
    committed = json.loads(schemas.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == schema_file.generate(), (
        "tool_schemas.json is out of date: run python -m mcp_server_heartbeat.mcp.schema_file"
    )


@pytest.mark.parametrize("kinds", [None, ["feature", "bugfix", "review"]])
def test_tools_from_the_file_equal_tools_generated_now(kinds):
    tags = TAGS_SCHEMA if kinds is None else tags_schema(kinds)
    with schemas.generating():
        fresh = {tool.name: tool for tool in _tools(tags)}
    built = {tool.name: tool for tool in _tools(tags)}
    assert built.keys() == fresh.keys()
    for name, tool in built.items():
        assert tool.parameters == fresh[name].parameters, name
        assert tool.output_schema == fresh[name].output_schema, name
        assert tool.fn_metadata.output_model is fresh[name].fn_metadata.output_model, name
        assert tool.fn_metadata.wrap_output == fresh[name].fn_metadata.wrap_output, name


def test_every_tool_and_result_model_is_in_the_file():
    committed = json.loads(schemas.SCHEMA_FILE.read_text(encoding="utf-8"))
    for tool in _tools(TAGS_SCHEMA):
        assert schemas.cached_input(tool.name) is not None, tool.name
        assert tool.fn_metadata.output_model.__name__ in committed["output"], tool.name
