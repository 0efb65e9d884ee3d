"""What the SessionStart hook tells the model: the ``additionalContext`` text,
short lines about this session, the project, its plan and the other sessions
working here (:func:`format_start_context`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..domain.ids import SessionId
from ..domain.models import PlanHint, ProjectContext, SessionView

MAX_OTHERS_SHOWN = 10
"""At most this many other sessions are described; the rest are counted."""

COMPACT_REMINDER = (
    "The conversation was just compacted: re-confirm anything you were waiting for before "
    "relying on it — call heartbeat (it reports claim_lost if your plan was taken) and "
    "list_sessions (has the session you waited on finished, released or died?)."
)
RESUME_REMINDER = (
    "This session was resumed: call heartbeat to confirm you still hold your plan before "
    "going on with it."
)
PROTOCOL_REMINDER = (
    "Claim a plan with claim_plan before working on it, heartbeat with activity at step "
    "boundaries, release it when done."
)


@dataclass(frozen=True)
class StartReport:
    """What the start hook found; :func:`format_start_context` turns it into text."""

    session_id: SessionId
    source: str
    server_session: SessionView | None
    own: SessionView | None
    others: list[SessionView]
    project: ProjectContext
    suggested: PlanHint | None
    plans_dir: str


def format_start_context(report: StartReport) -> str:
    """The ``additionalContext`` text: short lines a model reads at session start."""
    lines: list[str] = []
    server = report.server_session
    if server is not None:
        lines.append(
            f"Heartbeat: Claude Code started conversation id {report.session_id} on /clear; "
            f"this conversation's MCP heartbeat server still runs as session "
            f"{server.session_id}, so your claims and heartbeats are recorded under that id."
        )
    else:
        lines.append(f"Heartbeat: you are session {report.session_id}.")
    lines.append(_project_line(report.project))
    mine = server or report.own
    if mine is not None and mine.plan_id is not None:
        lines.append(
            f"Active plan: {mine.plan_id} (claimed by you, fencing token {mine.fencing_token})."
        )
    else:
        lines.append("Active plan: none claimed.")
    hint = report.suggested
    if hint is not None and (mine is None or mine.plan_id != hint.plan_id):
        holder = next((v for v in report.others if v.plan_id == hint.plan_id), None)
        where = _relative(report.plans_dir, report.project.root)
        text = (
            f"Suggested plan: {hint.plan_id} ({where}/{hint.file} matches branch "
            f"{hint.branch} by {hint.matched_by}) — a hint, not claimed"
        )
        if holder is not None:
            text += f"; it is held by session {holder.session_id} ({holder.status})."
        else:
            text += f': call claim_plan(plan_id="{hint.plan_id}") if you take it up.'
        lines.append(text)
    if report.others:
        lines.append(f"Other sessions working here ({len(report.others)}):")
        lines.extend(_session_line(view) for view in report.others[:MAX_OTHERS_SHOWN])
        if len(report.others) > MAX_OTHERS_SHOWN:
            lines.append(
                f"- ... and {len(report.others) - MAX_OTHERS_SHOWN} more (list_sessions shows all)"
            )
    else:
        lines.append("Other sessions working here: none.")
    lines.append(PROTOCOL_REMINDER)
    if report.source == "compact":
        lines.append(COMPACT_REMINDER)
    elif report.source == "resume":
        lines.append(RESUME_REMINDER)
    return "\n".join(lines)


def _project_line(project: ProjectContext) -> str:
    stacks = []
    for stack in project.stacks:
        details = ", ".join(filter(None, [stack.package_manager, *stack.frameworks]))
        stacks.append(f"{stack.type} ({details})" if details else stack.type)
    parts = [f"Project: {' + '.join(stacks) if stacks else 'type not detected'}"]
    if project.git_root is not None:
        git = f"git branch {project.branch or 'unknown'}"
        if project.remote_url:
            git += f", remote {project.remote_url}"
        parts.append(git)
    parts.append(f"root {project.root}")
    return "; ".join(parts) + "."


def _session_line(view: SessionView) -> str:
    details = [view.status, f"plan {view.plan_id}" if view.plan_id else "no plan"]
    if view.branch:
        details.append(f"branch {view.branch}")
    if view.role:
        details.append(f"role {view.role}")
    if view.last_activity:
        details.append(f"activity {json.dumps(view.last_activity, ensure_ascii=False)}")
    return f"- {view.session_id}: {', '.join(details)}"


def _relative(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


__all__ = ["MAX_OTHERS_SHOWN", "StartReport", "format_start_context"]
