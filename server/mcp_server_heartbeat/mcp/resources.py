"""What the MCP resources show, as JSON text: no MCP here.

``app`` registers three resources and calls these:

* ``heartbeat://sessions`` — :func:`sessions_json`: every session (ended ones
  too) with computed liveness, and the unreadable files: the shape of the
  ``list_sessions`` tool's result.
* ``heartbeat://sessions/{session_id}`` — :func:`session_json`: one session view.
* ``heartbeat://plans/{plan_id}`` — :func:`plan_json`: the plan's holder,
  fencing token, transition count and recent events
  (:class:`~mcp_server_heartbeat.session.observe.PlanReport`).

Reading never modifies the directory and does not count as the agent's
activity (unlike a tool call, a resource read is not the agent working).
"""

from __future__ import annotations

from ..domain.errors import InvalidInputError
from ..domain.validation import validate_id
from ..session.service import SessionService


class NotFoundError(LookupError):
    """The resource names a session or plan the directory does not have."""


def sessions_json(service: SessionService) -> str:
    """``{"sessions": [<view>...], "unreadable": [{file, reason}...]}`` as JSON text.

    Raises:
        StoreError: the directory cannot be listed.
    """
    return service.list_sessions(include_ended=True).model_dump_json(indent=2)


def session_json(service: SessionService, session_id: str) -> str:
    """One session's view as JSON text.

    Raises:
        InvalidInputError: ``session_id`` is not a valid id.
        NotFoundError: no readable record of that session.
    """
    validate_id(session_id, "session_id")
    if session_id == service.session_id:
        return service.view_self().model_dump_json(indent=2)
    for view in service.list_sessions(include_ended=True).sessions:
        if view.session_id == session_id:
            return view.model_dump_json(indent=2)
    raise NotFoundError(
        f"no session {session_id} in the heartbeat directory; read heartbeat://sessions for the ids"
    )


def plan_json(service: SessionService, plan_id: str) -> str:
    """The plan's report (holder, fencing token, transitions, recent events) as JSON.

    Raises:
        InvalidInputError: ``plan_id`` is not a valid id.
        NotFoundError: the plan was never claimed and has no events.
        StoreError: its ledger is unreadable.
    """
    validate_id(plan_id, "plan_id")
    report = service.plan_report(plan_id)
    if report.fencing_token is None and not report.events:
        raise NotFoundError(f"plan {plan_id} was never claimed")
    return report.model_dump_json(indent=2)


__all__ = ["InvalidInputError", "NotFoundError", "plan_json", "session_json", "sessions_json"]
