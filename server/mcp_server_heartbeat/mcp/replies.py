"""The text content of tool results, written for the model that reads it.

Every tool result carries the full data once, as ``structuredContent``
(checked against the tool's ``outputSchema``). The text block is for clients
that read only text, and for the model: by default it is the same data as
compact JSON (no indentation); ``list_sessions`` gets a summary line and one
table row per session instead of the JSON a second time (:func:`sessions_text`).
No MCP here: the layer that builds results (:mod:`.strict`) calls these.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..domain.models import ListResult, SessionView

STATUS_ORDER = ("active", "idle", "stale", "dead", "ended")
COLUMNS = (
    "session_id",
    "status",
    "health",
    "beat_age_s",
    "until_stale_s",
    "plan_id",
    "token",
    "relationship",
    "role",
    "branch",
    "activity",
)


def sessions_text(result: ListResult) -> str:
    """``list_sessions`` as text: a summary line, a ``|``-separated table, the unreadable files.

    One row per session in the result's order, with the columns of
    :data:`COLUMNS` (ages in whole seconds; ``-`` for none). The complete views
    (every field) are in ``structuredContent``; this names every session, its
    status, plan and fencing token, so a client that shows only text loses no
    decision-relevant fact. Shape::

        3 sessions: 1 active, 1 stale, 1 ended; 0 unreadable files (full data in structuredContent)
        session_id | status | health | ... | activity
        a1b2 | active | healthy | 4 | 176 | 043 | 7 | self | executor | feat/043 | step2
        unreadable: junk.json: not JSON (...)
    """
    sessions = result.sessions
    counts = Counter(view.status for view in sessions)
    by_status = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts[s])
    noun = "session" if len(sessions) == 1 else "sessions"
    files = "file" if len(result.unreadable) == 1 else "files"
    summary = f"{len(sessions)} {noun}" + (f": {by_status}" if by_status else "")
    lines = [
        f"{summary}; {len(result.unreadable)} unreadable {files} (full data in structuredContent)"
    ]
    if sessions:
        lines.append(" | ".join(COLUMNS))
        lines.extend(_row(view) for view in sessions)
    lines.extend(f"unreadable: {u.file}: {_cell(u.reason)}" for u in result.unreadable)
    return "\n".join(lines)


def _row(view: SessionView) -> str:
    # One f-string per row (a listing of 10,000 sessions makes 10,000 rows); the
    # literal columns (status, health, relationship) and numbers need no escaping.
    return (
        f"{_cell(view.session_id)} | {view.status} | {view.health or '-'} | "
        f"{_seconds(view.heartbeat_age_s)} | {_seconds(view.seconds_until_stale)} | "
        f"{_cell(view.plan_id)} | {_number(view.fencing_token)} | {view.relationship} | "
        f"{_cell(view.role)} | {_cell(view.branch)} | {_cell(view.last_activity)}"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else str(round(value))


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _cell(value: Any) -> str:
    """A table cell: ``-`` for none; a ``|`` or line break in free text cannot split the row."""
    if value is None:
        return "-"
    text = value if type(value) is str else str(value)
    if "|" in text or "\n" in text:
        return text.replace("|", "/").replace("\n", " ")
    return text


__all__ = ["COLUMNS", "sessions_text"]
