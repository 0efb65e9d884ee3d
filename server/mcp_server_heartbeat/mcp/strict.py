"""Where this server is stricter than the SDK's defaults, on the SDK's public API.

* Tool arguments are validated strictly and as sent: unknown arguments are
  refused, not dropped (a misspelt ``fencing_tokne`` must not release without
  the token check); a value of the wrong JSON type is refused, not coerced
  (``"yes"`` is not ``true``, ``"1"`` is not ``1``, ``"null"`` is not
  ``null``); the advertised input schema says exactly that. Each tool is built
  with :func:`strict_tool` and handed to ``MCPServer(tools=[...])``: nothing is
  patched after registration, so an SDK release that changes tools fails at
  start, never serves unprotected.
* A refused argument gets a message written for the agent (argument, value
  given, rule, what is accepted), not pydantic's report
  (:meth:`HeartbeatServer.call_tool`).
* A result is built once (:meth:`VerbatimMetadata.convert_result`): the
  returned model (validated when the service built it) is dumped once for
  ``structuredContent``, and the text block is compact JSON of the same data,
  or the tool's own text (``list_sessions``: :func:`.replies.sessions_text`),
  instead of the SDK's indented JSON and a second validation.
* An unknown resource answers ``-32002`` (resource not found)
  (:meth:`HeartbeatServer.read_resource`).

Only public SDK names are used here: ``MCPServer`` and its documented
``call_tool``/``read_resource`` methods, ``Tool.from_function`` and the
``Tool`` fields, ``FuncMetadata`` (whose docstring promises its fields are read
live) and ``func_metadata``, ``find_context_parameter``, the SDK's exceptions.
The capability and prompt rules are middleware (:mod:`.middleware`); the one
private use left is in :mod:`.stdio_lines`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, get_type_hints

import pydantic_core
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceNotFoundError,
    ToolError,
    UnexpectedToolError,
)
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata, func_metadata
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from ..domain.validation import describe_arguments_error
from .schemas import cached, fingerprint

RESOURCE_NOT_FOUND = -32002
"""MCP's "resource not found" error code (spec 2024-11-05 to 2025-11-25, the
revisions Claude Code and the MCP Inspector negotiate). The SDK answers
``-32602`` for an unknown URI and ``-32603`` for any resource error."""


class HeartbeatServer(MCPServer[Any]):
    """``MCPServer`` with agent-readable argument errors and honest resource errors.

    Overrides the documented public methods ``call_tool`` and
    ``read_resource``, which the SDK's request handlers call.
    """

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        """Call a tool; a refused argument becomes one message written for the agent.

        The SDK documents that a refused argument raises a plain ``ToolError``
        (its ``__cause__`` is the arguments' ``ValidationError``); a tool's own
        errors are wrapped twice, and a crash, such as a result that fails its
        output schema, is an ``UnexpectedToolError``. The message names the
        argument, the value given, the rule and what the input schema accepts.
        """
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            schema = await self._input_schema(name)
            raise ToolError(describe_arguments_error(name, cause.errors(), schema)) from cause

    async def _input_schema(self, name: str) -> dict[str, Any]:
        for tool in await self.list_tools():
            if tool.name == name:
                return tool.input_schema
        return {}  # pragma: no cover - the SDK refuses an unknown tool before validation

    async def read_resource(
        self, uri: Any, context: Context[Any, Any] | None = None
    ) -> Iterable[Any] | Any:
        """Read a resource; an unknown URI answers ``-32002`` (resource not found)."""
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError as exc:
            raise resource_not_found(str(exc), str(uri)) from exc


def resource_not_found(message: str, uri: str) -> MCPError:
    """The error a resource function raises for a session or plan that does not exist."""
    return MCPError(code=RESOURCE_NOT_FOUND, message=message, data={"uri": uri})


class VerbatimMetadata(FuncMetadata):
    """The SDK's argument metadata without its JSON pre-parsing, building each result once.

    The SDK decodes a string argument that holds JSON when the parameter is
    not a plain ``str`` (``"null"`` becomes ``None``, ``'{"kind": ...}'`` an
    object), so ``"fencing_token": "null"`` would release without the token
    check. Arguments are validated as sent.
    """

    text: Annotated[Callable[[Any], str] | None, WithJsonSchema(None)] = Field(
        default=None, exclude=True
    )
    """Renders the result model as the text block (None: compact JSON)."""
    fingerprint: Annotated[str | None, WithJsonSchema(None)] = Field(default=None, exclude=True)
    """What the tool's schemas were derived from (:func:`.schemas.fingerprint`)."""

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def convert_result(self, result: Any) -> Any:
        """The tool's result: ``structuredContent`` and one text block, each built once.

        A result of exactly the tool's output model was validated when it was
        built (the SDK would only check its type again: pydantic does not
        revalidate an instance), so it is dumped once in JSON mode (dates by
        pydantic's serialiser) for ``structuredContent``; the text block is
        that data as compact JSON (``separators`` without spaces, no
        indentation), or the tool's own text. Anything else (an error, a
        subclass, a hand-built result) goes the SDK's way.
        """
        if self.output_model is None or type(result) is not self.output_model:
            return super().convert_result(result)
        assert isinstance(result, BaseModel)
        structured = result.model_dump(mode="json", by_alias=True)
        if self.text is not None:
            text = self.text(result)
        else:
            text = pydantic_core.to_json(structured).decode()
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=structured
        )


def strict_tool(
    fn: Callable[..., Any],
    *,
    annotations: ToolAnnotations | None = None,
    text: Callable[[Any], str] | None = None,
    properties: Mapping[str, dict[str, Any]] | None = None,
) -> Tool:
    """``fn`` as an SDK tool whose arguments are validated strictly and as sent.

    The SDK's ``Tool.from_function`` builds the tool; its argument model is
    then replaced by a subclass with ``extra="forbid"`` (an unknown argument is
    refused, not dropped) and ``strict=True`` (no type coercion), without the
    SDK's JSON pre-parsing, and its input schema is that model's, with
    ``additionalProperties: false``. Patterns and length limits come from
    the argument types (``domain.ids``, ``domain.models.*Arg``), so schema and
    validation are one source. Register the result with ``MCPServer(tools=...)``.
    ``text`` renders the result model as the text block a model reads
    (default: compact JSON of ``structuredContent``). ``properties`` replaces
    input-schema properties decided at start (a project's tag vocabulary).

    The input and output schemas are read from the committed
    ``tool_schemas.json`` (:mod:`.schemas`), not generated at each start, when
    its entry was generated from this very code (same fingerprint); else
    (a new or changed tool) they are generated the SDK's way.
    Fault suite: bad input; ``tests/test_tool_arguments.py``.
    """
    hints = _type_hints(fn)
    returned = _returned_model(hints)
    digest = None if returned is None else fingerprint(fn, hints, returned, properties or ())
    known = None if digest is None else cached(fn.__name__, digest)
    if known is None:
        tool = Tool.from_function(fn, annotations=annotations)
        output_model, wrap_output = tool.fn_metadata.output_model, tool.fn_metadata.wrap_output
        output_schema = tool.fn_metadata.output_schema
    else:  # the schemas are known: nothing derives them again
        tool = _known_tool(fn, annotations, known[0])
        output_model, wrap_output, output_schema = returned, False, known[1]
    base = tool.fn_metadata.arg_model
    # Built on the first call of the tool (``defer_build``), not at start.
    config = ConfigDict(
        **{**base.model_config, "extra": "forbid", "strict": True, "defer_build": True}
    )
    strict = type(base.__name__, (base,), {"model_config": config})
    metadata = VerbatimMetadata(
        arg_model=strict,
        output_schema=output_schema,
        output_model=output_model,
        wrap_output=wrap_output,
        text=text,
        fingerprint=digest,
    )
    if known is None:
        schema = {**strict.model_json_schema(by_alias=True), "additionalProperties": False}
    else:
        schema = known[0]
    if properties:
        schema = {**schema, "properties": {**schema.get("properties", {}), **properties}}
    return tool.model_copy(update={"fn_metadata": metadata, "parameters": schema})


def _known_tool(
    fn: Callable[..., Any], annotations: ToolAnnotations | None, parameters: dict[str, Any]
) -> Tool:
    """``Tool.from_function(fn, structured_output=False)`` without deriving the input
    schema, which the committed file gives (``parameters``): the SDK's argument
    model (``func_metadata``) and context parameter, the ``Tool`` fields as
    ``from_function`` sets them. Only for plain synchronous or ``async def``
    functions, as every tool here is (the fingerprint covers the signature)."""
    context = find_context_parameter(fn)
    metadata = func_metadata(
        fn, skip_names=[context] if context is not None else [], structured_output=False
    )
    return Tool(
        fn=fn,
        name=fn.__name__,
        description=fn.__doc__ or "",
        parameters=parameters,
        fn_metadata=metadata,
        is_async=inspect.iscoroutinefunction(fn),
        context_kwarg=context,
        annotations=annotations,
    )


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s resolved annotations with their metadata; {} if only the SDK resolves them."""
    try:
        return get_type_hints(fn, include_extras=True)
    except Exception:  # e.g. a name the SDK resolves its own way: let it
        return {}


def _returned_model(hints: dict[str, Any]) -> type[BaseModel] | None:
    """The pydantic model the tool is annotated to return, or None (anything else)."""
    returned = hints.get("return")
    if isinstance(returned, type) and issubclass(returned, BaseModel):
        return returned
    return None


__all__ = [
    "RESOURCE_NOT_FOUND",
    "HeartbeatServer",
    "VerbatimMetadata",
    "resource_not_found",
    "strict_tool",
]
