"""Validation of caller input: ids that become file names, and free-text labels.

Invariant 4 of the design: nothing is ever written, followed or deleted outside
the heartbeat directory. An id becomes a file name, so an id is accepted only
when it cannot name anything but a plain file inside the directory: it matches
``[A-Za-z0-9][A-Za-z0-9._-]{0,127}`` (ASCII only, no ``/``, no leading dot, so
no ``..``, no hidden files and no unicode look-alikes).
"""

from __future__ import annotations

import json
import re

from .errors import InvalidInputError

TYPE_CHECKING = False
if TYPE_CHECKING:  # the status line imports this module: neither pydantic nor typing
    from collections.abc import Mapping
    from typing import Any

    from pydantic import ValidationError

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ID_MAX_CHARS = 128
"""The longest id :data:`ID_PATTERN` accepts."""
ID_RULE = (
    "1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit "
    f"(pattern {ID_PATTERN}), e.g. '043' or 'feat-login'"
)
"""What an id accepts, in words; quoted by every error about an id."""


def validate_id(value: object, field: str) -> str:
    """Return ``value`` unchanged when it is a valid id, else raise.

    For the edges that read an id without pydantic (command-line arguments,
    ``--session-id``, ``CLAUDE_CODE_SESSION_ID``, resource URIs); pydantic
    edges use the types of :mod:`.ids`. Code below the edge does not call it.

    Args:
        value: the candidate id (anything; only ``str`` can pass).
        field: the argument's name, quoted in the error (e.g. ``"plan_id"``).

    Raises:
        InvalidInputError: the value is not a string matching ``ID_PATTERN``;
            the message names the field, the rule and a shortened repr of the value.
    """
    if is_id(value):
        return value  # type: ignore[return-value]
    raise id_refused(value, field)


def is_id(value: object) -> bool:
    """Whether ``value`` is a string matching :data:`ID_PATTERN` (the whole string)."""
    return isinstance(value, str) and _compiled(ID_PATTERN).fullmatch(value) is not None


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on first use, then kept: nothing is compiled at import
    (the status line loads this module), and a listing that checks every file
    name pays one dictionary lookup per name, not ``re``'s cache lookup."""
    found = _COMPILED.get(pattern)
    if found is None:
        found = _COMPILED[pattern] = re.compile(pattern)
    return found


def id_refused(value: object, field: str) -> InvalidInputError:
    """The error for an id that breaks the rule: the field, what was given
    (shortened), the rule and an example of what is accepted."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidInputError(f"{field} {shown} is not accepted: use {ID_RULE}.")


def describe_validation_error(exc: ValidationError, whole: str) -> str:
    """One line for a pydantic error: ``where: message`` of the first error, and
    how many more there are. ``whole`` names the location when the error is
    about the whole object (e.g. ``"record"``)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


MAX_ARGUMENT_ERRORS = 5
"""How many refused arguments one message describes."""


def describe_arguments_error(
    tool: str, errors: list[Mapping[str, Any]], schema: Mapping[str, Any]
) -> str:
    """A tool-argument refusal written for the agent that reads it.

    For each refused argument (at most :data:`MAX_ARGUMENT_ERRORS`, then how
    many more): its name, what was given (shortened, with its JSON type), the
    rule it broke and what the tool's input schema accepts.

    Args:
        tool: the tool's name.
        errors: pydantic's ``ValidationError.errors()`` for the arguments model.
        schema: the tool's advertised ``inputSchema`` (JSON Schema, an object).
    """
    parts = [_describe_one(error, schema) for error in errors[:MAX_ARGUMENT_ERRORS]]
    more = len(errors) - len(parts)
    if more:
        parts.append(f"and {more} more")
    return f"Error executing tool {tool}: " + "; ".join(parts) + "."


def _describe_one(error: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    properties: Mapping[str, Any] = schema.get("properties", {})
    loc = [str(part) for part in error.get("loc", ())]
    name = loc[0] if loc else "arguments"
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        accepted = ", ".join(properties) or "none"
        return (
            f"unknown argument {name!r} is not accepted: it is not a parameter of this tool "
            f"(misspelt?); accepted arguments: {accepted}"
        )
    if kind == "missing":
        return (
            f"argument {name!r} is missing; it is required, accepted: "
            f"{describe_accepted(properties.get(name, {}))}"
        )
    rule = "it does not match the rule" if "pattern" in kind else error.get("msg", kind)
    return (
        f"{'.'.join(loc) or 'arguments'} {shorten(error.get('input'))} is not accepted "
        f"({rule}); accepted: {describe_accepted(properties.get(name, {}))}"
    )


def shorten(value: object, limit: int = 60) -> str:
    """``value`` as JSON (what the caller sent), cut to ``limit`` characters, with its JSON type."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} (a JSON {_json_type(value)})"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def describe_accepted(schema: Mapping[str, Any]) -> str:
    """What a JSON Schema accepts, in words (the subset pydantic emits for our arguments)."""
    if "anyOf" in schema:
        return " or ".join(describe_accepted(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind == "null":
        return "null (or leave the argument out)"
    if kind == "boolean":
        return "true or false (a JSON boolean, not a string or number)"
    if kind == "integer":
        low = schema.get("minimum")
        bound = f" >= {low}" if low is not None else ""
        return f"a whole number{bound} (a JSON integer, not a string)"
    if kind == "string":
        pattern = schema.get("pattern")
        if pattern == f"^{ID_PATTERN}$":
            return f"a string of {ID_RULE}"
        limit = schema.get("maxLength")
        size = f" of at most {limit} characters" if limit is not None else ""
        if pattern == LABEL_PATTERN:
            return f"a string{size}: {LABEL_RULE}"
        return f"a string{size}" + (f" matching {pattern}" if pattern else "")
    if kind == "object":
        return "a JSON object"
    if kind == "array":
        return "a JSON array"
    return "see the tool's input schema"


MAX_LABEL_CHARS = 200
"""``activity`` and ``reason`` are labels for people and status lines: 200 characters at most."""

_NOT_IN_LABELS = r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
LABEL_PATTERN = rf"^[^{_NOT_IN_LABELS}]*[^\s{_NOT_IN_LABELS}][^{_NOT_IN_LABELS}]*$"
"""A label: at least one visible character; no control characters (C0, DEL, C1), no
line or paragraph separators, no invisible format characters (soft hyphen,
zero-width, bidi embeddings/isolates, BOM). One regular expression that means
the same in Python ``re``, pydantic's Rust engine and ECMA-262 (JSON Schema
clients), so the tools' input schema and the server accept the same labels."""
LABEL_RULE = (
    "printable text on one line with at least one visible character (no newline, tab, "
    "NUL, escape, zero-width or bidi control characters)"
)

KEBAB_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
"""Lowercase kebab-case: ``a-z0-9`` words joined by single ``-`` (tag kinds and topics)."""
MAX_TOPIC_CHARS = 20
MAX_KIND_CHARS = 40


def validate_label(value: object, field: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """Return ``value`` when it is a printable one-line string of at most ``max_chars``.

    Raises:
        InvalidInputError: not a string, empty, too long, or containing control
            characters (newlines, NUL, escapes) that would break status lines.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{field} must be a non-empty string of at most {max_chars} characters"
        )
    if len(value) > max_chars:
        raise InvalidInputError(
            f"{field} is {len(value)} characters long; at most {max_chars} are accepted"
        )
    if not _compiled(LABEL_PATTERN).fullmatch(value):
        raise InvalidInputError(
            f"{field} contains control or invisible characters (newline, tab, NUL, escape, "
            f"zero-width, bidi ...); use {LABEL_RULE}"
        )
    return value


def validate_kebab(value: object, field: str, max_chars: int) -> str:
    """Return ``value`` when it is lowercase kebab-case (``a-z0-9`` words joined by ``-``).

    Raises:
        InvalidInputError: not a string, longer than ``max_chars``, or not kebab-case.
    """
    kebab = _compiled(KEBAB_PATTERN)
    if isinstance(value, str) and len(value) <= max_chars and kebab.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise InvalidInputError(
        f"{field} {shown} is not accepted: use lowercase kebab-case (a-z, 0-9 and single '-'), "
        f"at most {max_chars} characters, e.g. 'auth' or 'review-loop'"
    )


__all__ = [
    "ID_MAX_CHARS",
    "ID_PATTERN",
    "ID_RULE",
    "KEBAB_PATTERN",
    "LABEL_PATTERN",
    "LABEL_RULE",
    "MAX_ARGUMENT_ERRORS",
    "MAX_KIND_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_TOPIC_CHARS",
    "describe_accepted",
    "describe_arguments_error",
    "describe_validation_error",
    "id_refused",
    "is_id",
    "shorten",
    "validate_id",
    "validate_kebab",
    "validate_label",
]
