"""The tools' JSON schemas, generated once and kept in ``tool_schemas.json``.

Generating the input and output schemas of the tools from their pydantic
models costs about 70 ms of pydantic per start-up (mostly the output schemas
of the large result models); they depend only on the code, so they are
generated once, committed next to this module, and read at start (one small
JSON file). :func:`~.strict.strict_tool` takes a tool's schemas from here and
generates them the SDK's way only for a tool or result model the file does not
have. ``tests/test_tool_schemas.py`` fails when the file differs from what the
models generate; regenerate it with::

    python -m mcp_server_heartbeat.mcp.schema_file

Shape: ``{"input": {<tool name>: <input schema>}, "output": {<result model
name>: <output schema>}}``. A project's tag vocabulary is not in the file: the
``heartbeat`` tool's ``tags`` property is replaced at start
(:func:`~.server.build_app`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("tool_schemas.json")
_generating = False


@cache
def _load() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # pragma: no cover - a broken install: generate instead
        return {"input": {}, "output": {}}
    return data if isinstance(data, dict) else {"input": {}, "output": {}}


def cached_input(tool: str) -> dict[str, Any] | None:
    """The committed input schema of ``tool``, or None (not in the file, or generating)."""
    schema: dict[str, Any] | None = None if _generating else _load()["input"].get(tool)
    return schema


def cached_output(model: str) -> dict[str, Any] | None:
    """The committed output schema of the result model named ``model``, or None."""
    schema: dict[str, Any] | None = None if _generating else _load()["output"].get(model)
    return schema


@contextmanager
def generating() -> Iterator[None]:
    """Within this block, tools are built with freshly generated schemas (the file is ignored)."""
    global _generating
    _generating = True
    try:
        yield
    finally:
        _generating = False


def schemas_of(tools: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The schema file's content for ``tools`` (SDK ``Tool`` objects), keys sorted."""
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for tool in tools:
        inputs[tool.name] = tool.parameters
        model = tool.fn_metadata.output_model
        if isinstance(model, type) and tool.output_schema is not None:
            outputs[model.__name__] = tool.output_schema
    return {"input": dict(sorted(inputs.items())), "output": dict(sorted(outputs.items()))}


def render(data: dict[str, dict[str, Any]]) -> str:
    """The file's text: indented, keys in order, so a change reads well in a diff."""
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


__all__ = ["SCHEMA_FILE", "cached_input", "cached_output", "generating", "render", "schemas_of"]
