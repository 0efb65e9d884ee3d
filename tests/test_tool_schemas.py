"""The committed tool schemas (mcp/tool_schemas.json) are what the models generate."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated, Any, Literal, get_type_hints

import pytest
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

from mcp_server_heartbeat.mcp import schema_file, schemas, strict
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


def _inner(description: str = "an inner value") -> type[BaseModel]:
    return create_model("Inner", v=(int, Field(0, description=description)))


def _result(
    *,
    doc: str = "A result.",
    config: ConfigDict | None = None,
    inner: type[BaseModel] | None = None,
    validators: dict[str, Any] | None = None,
    **fields: Any,
) -> type[BaseModel]:
    """A tool's result model; each keyword changes one thing of the default one."""
    base: dict[str, Any] = {
        "x": (int, Field(1, description="an x")),
        "y": (str | None, None),
        "z": (list[str], Field(default_factory=list, max_length=2)),
        "kind": (Literal["a", "b"], "a"),
        "n": (inner or _inner(), ...),
    }
    return create_model(
        "Result", __doc__=doc, __config__=config, __validators__=validators, **{**base, **fields}
    )


def _digest(returned: type[BaseModel], fn: Any = None) -> str:
    def probe(a: Annotated[int, Field(ge=0, description="an a")] = 1) -> None:
        """A tool."""

    fn = fn or probe
    return schemas.fingerprint(fn, get_type_hints(fn, include_extras=True), returned, ())


def _before(cls: type, value: Any) -> Any:
    return value


def test_the_fingerprint_changes_with_anything_a_schema_is_made_of():
    """Any change to what pydantic generates a tool's schemas from changes the
    fingerprint, so a stale ``tool_schemas.json`` entry is never served."""

    def described(a: Annotated[int, Field(ge=0, description="another a")] = 1) -> None:
        """A tool."""

    def constrained(a: Annotated[int, Field(ge=1, description="an a")] = 1) -> None:
        """A tool."""

    def defaulted(a: Annotated[int, Field(ge=0, description="an a")] = 2) -> None:
        """A tool."""

    variants = {
        "same": _digest(_result()),
        "field description": _digest(_result(x=(int, Field(1, description="the x")))),
        "field default": _digest(_result(x=(int, Field(2, description="an x")))),
        "field type": _digest(_result(x=(float, Field(1, description="an x")))),
        "field constraint": _digest(
            _result(z=(list[str], Field(default_factory=list, max_length=3)))
        ),
        "field required": _digest(_result(y=(str | None, ...))),
        "field alias": _digest(_result(x=(int, Field(1, description="an x", alias="ex")))),
        "field title": _digest(_result(x=(int, Field(1, description="an x", title="X")))),
        "literal values": _digest(_result(kind=(Literal["a", "c"], "a"))),
        "added field": _digest(_result(w=(bool, False))),
        "docstring": _digest(_result(doc="Another result.")),
        "config": _digest(_result(config=ConfigDict(extra="forbid"))),
        "nested model": _digest(_result(inner=_inner("another inner value"))),
        "validator": _digest(
            _result(
                validators={
                    "check": field_validator("x", mode="before", json_schema_input_type=str)(
                        _before
                    )
                }
            )
        ),
        "parameter description": _digest(_result(), described),
        "parameter constraint": _digest(_result(), constrained),
        "parameter default": _digest(_result(), defaulted),
    }
    assert len(set(variants.values())) == len(variants), variants
    assert _digest(_result()) == variants["same"]  # the same code: the same digest


def test_a_tool_from_the_file_builds_its_argument_model_on_its_first_call():
    tool = {t.name: t for t in build_tools(TAGS_SCHEMA)}["release"]
    metadata = tool.fn_metadata
    assert "arg_model" not in vars(metadata)  # not built at start
    assert metadata.validate_arguments({"plan_id": "043"})["plan_id"] == "043"
    assert "arg_model" in vars(metadata)  # built once, then kept
    with pytest.raises(ValidationError):
        metadata.validate_arguments({"plan_id": "043", "fencing_tokne": 1})
    with pytest.raises(ValidationError):
        metadata.validate_arguments({"fencing_token": "1"})


def _plain(ctx: Context, a: int) -> None: ...
def _optional(a: int, ctx: Context | None = None) -> None: ...
def _annotated(ctx: Annotated[Context, "meta"]) -> None: ...
def _optional_annotated(ctx: Annotated[Context, "meta"] | None = None) -> None: ...
def _none(a: int, b: str) -> None: ...


@pytest.mark.parametrize("fn", [_plain, _optional, _annotated, _optional_annotated, _none])
def test_the_context_parameter_is_found_as_the_sdk_finds_it(fn):
    hints = get_type_hints(fn, include_extras=True)
    assert strict._context_parameter(hints) == find_context_parameter(fn)
