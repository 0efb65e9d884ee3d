"""Subagents that know the claim: ``mcp-server-heartbeat hook subagent-start``.

Claude Code runs ``SubagentStart`` when the agent dispatches a subagent, with
the parent conversation's ``session_id``, ``cwd``, ``agent_id`` and
``agent_type`` on stdin, and adds the hook's ``additionalContext`` to the
subagent's context. This hook prints a compact block (about 200 tokens)::

    Heartbeat (subagent): your parent is session 4f6b8a0e-...; it holds plan 043
    (fencing token 7) on branch feat/43-login, worktree /repo.
    Rules: the parent holds the plan, not you. ...

The parent's session is found as the loss hooks find it (the payload's id,
its ``<id>-2`` successors, the live server of this client after ``/clear``;
:func:`~.light_hook.conversation_records`), and its claim is checked against
the plan's ledger, read as plain JSON (no pydantic, no ``mcp``). When the
parent holds no plan the block is a short note with the same rules: a
subagent must not claim for its parent either. When the parent's claim was
taken over, the block says so and tells the subagent not to work on the plan.
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

from ..store import LightReader, open_light_reader
from .light_hook import config_of, conversation_records, never_fail, print_context, read_payload

RULES = (
    "Rules: the parent holds the plan, not you. Do not call claim_plan, release or "
    "wait_for_plan, and never force a plan, from a subagent: you share your parent's "
    "heartbeat MCP server, so every heartbeat tool you call acts as your parent's session. "
    "Stay within the task you were given and report back to your parent (what you changed, "
    "and anything that looks like another session's work or a lost claim)."
)
NO_PLAN_RULES = (
    "Do not claim, release or force plans from a subagent: you share your parent's "
    "heartbeat MCP server, so its tools act as your parent's session. If the task needs a "
    "plan, report back to your parent."
)


def parent_block(records: list[dict[str, Any]], session_id: str, reader: LightReader) -> str:
    """The ``additionalContext`` for a subagent of ``session_id`` (``records``: the
    parent conversation's records as dicts, the payload's own first)."""
    holding = [r for r in records if isinstance(r.get("plan_id"), str) and r.get("plan_id")]
    if not holding:
        return (
            f"Heartbeat (subagent): your parent session {session_id} holds no plan. {NO_PLAN_RULES}"
        )
    record = holding[0]
    parent, plan, token = record.get("session_id"), record["plan_id"], record.get("fencing_token")
    where = []
    if isinstance(record.get("branch"), str):
        where.append(f"branch {record['branch']}")
    if isinstance(record.get("worktree") or record.get("cwd"), str):
        where.append(f"worktree {record.get('worktree') or record.get('cwd')}")
    place = f" on {', '.join(where)}" if where else ""
    ledger = reader.claim(plan)
    holder = ledger.get("holder") if ledger else None
    if isinstance(holder, str) and holder != parent:
        return (
            f"Heartbeat (subagent): your parent is session {parent}; its claim on plan {plan} "
            f"(fencing token {token}){place} was taken over by session {holder}. Do not work "
            f"on {plan}: report back to your parent. {NO_PLAN_RULES}"
        )
    return (
        f"Heartbeat (subagent): your parent is session {parent}; it holds plan {plan} "
        f"(fencing token {token}){place}.\n{RULES}"
    )


def run(args: argparse.Namespace) -> int:
    """``hook subagent-start``: print the parent's claim and the rules as the
    hook's JSON (``hookEventName: SubagentStart``); exit 0, always."""
    with never_fail("subagent-start"):
        payload = read_payload()
        config = config_of(args, payload)
        if not config.enabled.value:
            return 0
        reader = open_light_reader(config)
        records = reader.session_records()
        mine = conversation_records(
            records, payload.session_id, reader.now(), config.thresholds, socket.gethostname()
        )
        print_context("SubagentStart", parent_block(mine, payload.session_id, reader))
    return 0


__all__ = ["NO_PLAN_RULES", "RULES", "parent_block", "run"]
