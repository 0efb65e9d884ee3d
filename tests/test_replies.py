"""The text block of tool results: compact, and a table for list_sessions."""

from __future__ import annotations

from datetime import UTC, datetime

from mcp_server_heartbeat.domain.models import ListResult, SessionView, Unreadable
from mcp_server_heartbeat.mcp.replies import COLUMNS, sessions_text


def view(session_id: str, status: str, **fields: object) -> SessionView:
    base: dict[str, object] = dict.fromkeys(SessionView.model_fields)
    base.update(
        session_id=session_id,
        status=status,
        health="healthy",
        heartbeat_age_s=4.4,
        seconds_until_stale=175.6,
        relationship="other_active",
        last_heartbeat=datetime(2026, 11, 20, 23, 17, 2, 423999, tzinfo=UTC),
    )
    base.update(fields)
    return SessionView.model_validate(base)


def test_list_sessions_text_is_a_summary_and_one_row_per_session():
    result = ListResult(
        sessions=[
            view("a1", "active", plan_id="043", fencing_token=7, last_activity="x | y\nz"),
            view("b2", "ended", relationship="ended"),
        ],
        unreadable=[Unreadable(file="junk.json", reason="not JSON")],
    )
    lines = sessions_text(result).splitlines()
    assert lines[0].startswith("2 sessions: 1 active, 1 ended; 1 unreadable file ")
    assert lines[1] == " | ".join(COLUMNS)
    assert lines[2].split(" | ") == [
        "a1", "active", "healthy", "4", "176", "043", "7", "other_active", "-", "-", "x / y z"
    ]  # fmt: skip
    assert lines[3].startswith("b2 | ended | - | 4 | - | -")  # over: no health, no time left
    assert lines[4] == "unreadable: junk.json: not JSON"


def test_no_sessions_is_one_line():
    assert sessions_text(ListResult(sessions=[], unreadable=[])) == (
        "0 sessions; 0 unreadable files (full data in structuredContent)"
    )


def test_reply_dates_are_native_iso_utc_with_milliseconds():
    dumped = view("a1", "active").model_dump(mode="json")
    assert dumped["last_heartbeat"] == "2026-11-20T23:17:02.423000Z"
