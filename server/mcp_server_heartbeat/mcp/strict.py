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
live), ``func_metadata`` and its ``ArgModelBase``, ``Context``, the SDK's exceptions.
The capability and prompt rules are middleware (:mod:`.middleware`); the one
private use left is in :mod:`.stdio_lines`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import pydantic_core
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceNotFoundError,
    ToolError,
    UnexpectedToolError,
)
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata, func_metadata
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, WithJsonSchema

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

    Made with :meth:`deferred`, its ``arg_model`` is built when first read (the
    tool's first call), not at start. Never validated itself (``model_construct``):
    what it holds was built here, so its own pydantic schema is never built either.
    """

    model_config = ConfigDict(defer_build=True)

    text: Annotated[Callable[[Any], str] | None, WithJsonSchema(None)] = Field(
        default=None, exclude=True
    )
    """Renders the result model as the text block (None: compact JSON)."""
    fingerprint: Annotated[str | None, WithJsonSchema(None)] = Field(default=None, exclude=True)
    """What the tool's schemas were derived from (:func:`.schemas.fingerprint`)."""
    _arguments_of: tuple[Callable[..., Any], list[str]] | None = PrivateAttr(default=None)
    """The tool function and the parameters left out, while ``arg_model`` is not built."""

    @classmethod
    def deferred(
        cls, fn: Callable[..., Any], skip_names: list[str], **fields: Any
    ) -> VerbatimMetadata:
        """Metadata with ``fields`` whose ``arg_model`` is :func:`strict_arguments` of the
        SDK's argument model of ``fn`` (``func_metadata``), built when first read."""
        return cls.model_construct(**fields).defer_arguments(fn, skip_names)

    def defer_arguments(self, fn: Callable[..., Any], skip_names: list[str]) -> VerbatimMetadata:
        """Build ``arg_model`` from ``fn`` when it is first read (see :meth:`deferred`)."""
        self._arguments_of = (fn, skip_names)
        return self

    def __getattr__(self, name: str) -> Any:
        """``arg_model`` when it is not built yet (:meth:`deferred`): built now, then kept."""
        if name == "arg_model" and self._arguments_of is not None:
            fn, skip_names = self._arguments_of
            sdk = func_metadata(fn, skip_names=skip_names, structured_output=False)
            self.arg_model = strict_arguments(sdk.arg_model)
            self._arguments_of = None
            return self.arg_model
        return super().__getattr__(name)

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
    SDK's JSON pre-parsing (:func:`strict_arguments`), and its input schema is
    that model's, with ``additionalProperties: false``. Patterns and length
    limits come from the argument types (``domain.ids``, ``domain.models.*Arg``),
    so schema and validation are one source. Register the result with
    ``MCPServer(tools=...)``. ``text`` renders the result model as the text
    block a model reads (default: compact JSON of ``structuredContent``).
    ``properties`` replaces input-schema properties decided at start (a
    project's tag vocabulary).

    The input and output schemas are read from the committed
    ``tool_schemas.json`` (:mod:`.schemas`), not generated at each start, when
    its entry was generated from this very code (same fingerprint): the tool is
    then built without ``Tool.from_function`` (:func:`_known_tool`), and its
    argument model on its first call. Else (a new or changed tool) everything
    is generated the SDK's way, at once.
    Fault suite: bad input; ``tests/test_tool_arguments.py``.
    """
    hints = _type_hints(fn)
    returned = _returned_model(hints)
    digest = None if returned is None else fingerprint(fn, hints, returned, properties or ())
    known = None if digest is None else cached(fn.__name__, digest)
    if known is None:
        tool = Tool.from_function(fn, annotations=annotations)
        strict = strict_arguments(tool.fn_metadata.arg_model)
        metadata = VerbatimMetadata.model_construct(
            arg_model=strict,
            output_schema=tool.fn_metadata.output_schema,
            output_model=tool.fn_metadata.output_model,
            wrap_output=tool.fn_metadata.wrap_output,
            text=text,
            fingerprint=digest,
        )
        schema = {**strict.model_json_schema(by_alias=True), "additionalProperties": False}
        schema = _with_properties(schema, properties)
        return tool.model_copy(update={"fn_metadata": metadata, "parameters": schema})
    # The schemas are known: nothing derives them again.
    assert returned is not None and digest is not None
    schema = _with_properties(known[0], properties)
    return _known_tool(fn, hints, annotations, schema, returned, known[1], text, digest)


def _with_properties(
    schema: dict[str, Any], properties: Mapping[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """``schema`` with these input-schema ``properties`` replaced (or added)."""
    if not properties:
        return schema
    return {**schema, "properties": {**schema.get("properties", {}), **properties}}


def strict_arguments(base: type[ArgModelBase]) -> type[ArgModelBase]:
    """The SDK's argument model ``base`` with ``extra="forbid"`` and ``strict=True``,
    under the same name; built on its first validation (``defer_build``)."""
    config = ConfigDict(
        **{**base.model_config, "extra": "forbid", "strict": True, "defer_build": True}
    )
    return type(base.__name__, (base,), {"model_config": config})


def _known_tool(
    fn: Callable[..., Any],
    hints: dict[str, Any],
    annotations: ToolAnnotations | None,
    parameters: dict[str, Any],
    returned: type[BaseModel],
    output_schema: dict[str, Any],
    text: Callable[[Any], str] | None,
    digest: str,
) -> Tool:
    """The tool ``Tool.from_function`` and :func:`strict_tool` would build, without
    deriving the schemas, which the committed file gives (``parameters``,
    ``output_schema``), nor building the argument model before the first call
    (:meth:`VerbatimMetadata.deferred`). The ``Tool`` fields are set as
    ``from_function`` sets them; the context parameter is found in ``fn``'s
    resolved annotations as the SDK's ``find_context_parameter`` finds it
    (:func:`_context_parameter`). Only for plain synchronous or ``async def``
    functions, as every tool here is (the fingerprint covers the signature);
    ``tests/test_tool_schemas.py`` checks every field against the SDK's way."""
    context = _context_parameter(hints)
    metadata = VerbatimMetadata.deferred(
        fn,
        [context] if context is not None else [],
        output_schema=output_schema,
        output_model=returned,
        wrap_output=False,
        text=text,
        fingerprint=digest,
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


def _context_parameter(hints: dict[str, Any]) -> str | None:
    """The parameter that receives the SDK's ``Context``, found as the SDK's
    ``find_context_parameter`` finds it (a ``Context`` annotation, or one of
    its arguments), in annotations already resolved (the SDK resolves them again);
    ``Annotated`` metadata is looked through, as the SDK's resolution drops it."""
    for name, hint in hints.items():
        annotation = _bare(hint)
        if inspect.isclass(annotation) and issubclass(annotation, Context):
            return name
        if get_origin(annotation) is not None:
            for argument in get_args(annotation):
                argument = _bare(argument)
                if inspect.isclass(argument) and issubclass(argument, Context):
                    return name
    return None


def _bare(annotation: Any) -> Any:
    """``annotation`` without its ``Annotated`` metadata."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


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
    "strict_arguments",
    "strict_tool",
]
