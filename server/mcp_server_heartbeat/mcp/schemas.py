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

Shape: ``{"fingerprints": {<tool>: <digest>}, "tools": {<tool>: {"input":
<input schema>, "output": <output schema>}}}``. An entry is used only when its
digest equals :func:`fingerprint` of the running code (argument annotations
and defaults, the result models' fields, docs and config), so a signature or
model changed without regenerating the file costs start-up time, never a
stale schema. A project's tag vocabulary is not in the file: the
``heartbeat`` tool's ``tags`` property is replaced at start
(:func:`~.server.build_app`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

SCHEMA_FILE = Path(__file__).with_name("tool_schemas.json")
_generating = False


@cache
def _load() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # pragma: no cover - a broken install: generate instead
        return {"fingerprints": {}, "tools": {}}
    return data if isinstance(data, dict) else {"fingerprints": {}, "tools": {}}


def cached(tool: str, fingerprint: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The committed (input, output) schemas of ``tool`` if they were generated
    from code of this ``fingerprint`` (:func:`fingerprint`); else None
    (not in the file, stale, or generating)."""
    if _generating:
        return None
    data = _load()
    if data.get("fingerprints", {}).get(tool) != fingerprint:
        return None
    entry = data["tools"].get(tool)
    if not isinstance(entry, dict):  # pragma: no cover - a hand-edited file
        return None
    return entry["input"], entry["output"]


def fingerprint(
    fn: Callable[..., Any],
    hints: dict[str, Any],
    returned: type[BaseModel],
    skip: Iterable[str],
) -> str:
    """A digest of everything the schemas of tool ``fn`` are generated from.

    ``hints`` are ``fn``'s resolved annotations (``get_type_hints(...,
    include_extras=True)``). The parameters' annotations (types, ``Field`` descriptions,
    constraints) and defaults, except those in ``skip`` (replaced at start),
    and every model reachable from ``returned``: name, docstring, config,
    validators and serialisers, and each field with every attribute pydantic
    keeps for it (:func:`_field_text`). A change to any of them changes the
    digest, so a stale entry of ``tool_schemas.json`` is never used: the
    schemas are generated instead. Object addresses in reprs (validator
    functions) are left out.
    """
    skipped = set(skip)
    parts = [fn.__name__]
    for name, parameter in inspect.signature(fn).parameters.items():
        if name not in skipped:
            parts.append(f"{name}: {hints.get(name)!r} = {parameter.default!r}")
    for model in _models(returned):
        parts.append(f"{model.__name__} {model.__doc__!r} {model.model_config!r}")
        parts.append(_decorators_text(model))
        parts.extend(_field_text(name, field) for name, field in model.model_fields.items())
    text = _ADDRESS.sub("", "\n".join(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_FIELD_ATTRIBUTES = tuple(name for name in FieldInfo.__slots__ if not name.startswith("_"))
"""What a pydantic field holds (annotation, default, alias, description, metadata, ...):
read from the class, so an attribute a pydantic release adds is covered too."""


def _field_text(name: str, field: FieldInfo) -> str:
    """One field as text: each attribute that is set, as its ``repr``.

    The same content as pydantic's own ``repr`` of the field, in about a
    tenth of the time (that one spells out each annotation as a type name;
    ``repr`` of the annotation object says as much).
    """
    values = [
        f"{attribute}={value!r}"
        for attribute in _FIELD_ATTRIBUTES
        if (value := getattr(field, attribute)) is not PydanticUndefined
        and (value is not None or attribute == "default")  # None: unset, but a default
    ]
    return f"{name}({', '.join(values)})"


def _decorators_text(model: type[BaseModel]) -> str:
    """The model's validators, serialisers and computed fields: each one's name and
    what it is declared to do (mode, fields, JSON-schema input type)."""
    declared = model.__pydantic_decorators__  # a dataclass: one dict per kind
    return repr(
        {
            kind.name: {name: found.info for name, found in getattr(declared, kind.name).items()}
            for kind in dataclasses.fields(declared)
        }
    )


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every pydantic model its fields mention, each once, in a fixed order."""
    seen: list[type[BaseModel]] = []
    todo: list[Any] = [root]
    while todo:
        item = todo.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item in seen:
                continue
            seen.append(item)
            todo.extend(field.annotation for field in item.model_fields.values())
        else:
            todo.extend(get_args(item))
    return seen


@contextmanager
def generating() -> Iterator[None]:
    """Within this block, tools are built with freshly generated schemas (the file is ignored)."""
    global _generating
    _generating = True
    try:
        yield
    finally:
        _generating = False


def schemas_of(tools: Iterable[Any]) -> dict[str, Any]:
    """The schema file's content for ``tools`` (built by :func:`~.strict.strict_tool`)."""
    ordered = sorted(tools, key=lambda tool: tool.name)
    return {
        "fingerprints": {tool.name: tool.fn_metadata.fingerprint for tool in ordered},
        "tools": {
            tool.name: {"input": tool.parameters, "output": tool.output_schema} for tool in ordered
        },
    }


def render(data: dict[str, Any]) -> str:
    """The file's text: indented, keys in order, so a change reads well in a diff."""
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


__all__ = ["SCHEMA_FILE", "cached", "fingerprint", "generating", "render", "schemas_of"]
