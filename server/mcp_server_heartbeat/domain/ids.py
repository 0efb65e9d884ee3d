"""Ids as types: ``PlanId`` and ``SessionId``, validated once, at the edge.

An id becomes a file name (``<dir>/<session_id>.json``,
``<dir>/claims/<plan_id>.json``), so it follows :data:`~.validation.ID_PATTERN`
(``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``: ASCII, no ``/``, no leading dot).

The annotated types carry that rule wherever pydantic reads input: the MCP
tools' arguments (the pattern and length are in each tool's input schema, so a
client that validates first agrees with the server) and Claude Code's hook
payloads. Edges without pydantic (command-line arguments, ``--session-id``,
``CLAUDE_CODE_SESSION_ID``, resource URIs) call
:func:`~.validation.validate_id`, the same rule in plain Python. Below the edge
nothing checks an id again; the directory store keeps only its own
path-safety assertion (design invariant 4).

Both types are strict: a JSON number is not an id (``43`` is refused, not
turned into ``"43"``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Strict, StringConstraints

from .validation import ID_MAX_CHARS, ID_PATTERN

_ID_CONSTRAINTS = StringConstraints(pattern=f"^{ID_PATTERN}$", max_length=ID_MAX_CHARS)

PlanId = Annotated[str, Strict(), _ID_CONSTRAINTS]
"""A plan (work item) id, e.g. ``'043'`` or ``'feat-login'``.

JSON Schema: ``{"type": "string", "pattern": "^<ID_PATTERN>$", "maxLength": 128}``."""

SessionId = Annotated[str, Strict(), _ID_CONSTRAINTS]
"""A session id (Claude Code's conversation id, or ``--session-id``); same rule and schema."""

__all__ = ["PlanId", "SessionId"]
