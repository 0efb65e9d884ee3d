"""Validation of caller input: ids that become file names, and free-text labels.

Invariant 4 of the design: nothing is ever written, followed or deleted outside
the heartbeat directory. An id becomes a file name, so an id is accepted only
when it cannot name anything but a plain file inside the directory: it matches
``[A-Za-z0-9][A-Za-z0-9._-]{0,127}`` (ASCII only, no ``/``, no leading dot, so
no ``..``, no hidden files and no unicode look-alikes).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the status line imports this module and must not load pydantic
    from pydantic import ValidationError

from .errors import InvalidInputError

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_ID_RE = re.compile(ID_PATTERN)


def validate_id(value: object, field: str) -> str:
    """Return ``value`` unchanged when it is a valid id, else raise.

    Args:
        value: the candidate id (anything; only ``str`` can pass).
        field: the argument's name, quoted in the error (e.g. ``"plan_id"``).

    Raises:
        InvalidInputError: the value is not a string matching ``ID_PATTERN``;
            the message names the field, the rule and a shortened repr of the value.
    """
    if isinstance(value, str) and _ID_RE.fullmatch(value):
        return value
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise InvalidInputError(
        f"{field} {shown} is not accepted: use 1 to 128 ASCII letters, digits, '.', '_' or '-', "
        f"starting with a letter or digit (pattern {ID_PATTERN}), e.g. '043' or 'feat-login'."
    )


def describe_validation_error(exc: ValidationError, whole: str) -> str:
    """One line for a pydantic error: ``where: message`` of the first error, and
    how many more there are. ``whole`` names the location when the error is
    about the whole object (e.g. ``"record"``)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


MAX_LABEL_CHARS = 200
"""``activity`` and ``reason`` are labels for people and status lines: 200 characters at most."""

_KEBAB_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
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
    if not value.isprintable():
        raise InvalidInputError(
            f"{field} contains control characters (newline, tab, NUL, escape ...); "
            "use printable text on one line"
        )
    return value


def validate_kebab(value: object, field: str, max_chars: int) -> str:
    """Return ``value`` when it is lowercase kebab-case (``a-z0-9`` words joined by ``-``).

    Raises:
        InvalidInputError: not a string, longer than ``max_chars``, or not kebab-case.
    """
    if isinstance(value, str) and len(value) <= max_chars and _KEBAB_RE.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise InvalidInputError(
        f"{field} {shown} is not accepted: use lowercase kebab-case (a-z, 0-9 and single '-'), "
        f"at most {max_chars} characters, e.g. 'auth' or 'review-loop'"
    )


__all__ = [
    "ID_PATTERN",
    "MAX_KIND_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_TOPIC_CHARS",
    "describe_validation_error",
    "validate_id",
    "validate_kebab",
    "validate_label",
]
