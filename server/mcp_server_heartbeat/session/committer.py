"""Which session is making this commit: found without the agent's help.

The git hooks run under ``git``, itself run by the agent's shell. Two ways lead
from there to the session record (in this order):

1. ``HEARTBEAT_SESSION_ID``: the SessionStart hook writes
   ``export HEARTBEAT_SESSION_ID=<id>`` to the file Claude Code names in
   ``CLAUDE_ENV_FILE``, and Claude Code sources it before each Bash command.
   The id is a conversation id; its MCP server may run under a new id that
   continues it (``<id>-2``, whose ``previous_session`` is ``<id>``): the live
   continuation wins, else the newest record of the chain that names a claim
   (a dead session's lost claim is still refused).
2. The live server record whose client process is an ancestor of this process
   (:func:`~.readers.conversation_server`: the same rule as the status line).

Nothing found: a commit by a person outside any session (no trailer, no check).
Reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ..domain.fencing import ClaimRef
from ..domain.models import SessionRecord
from ..host.identity import SESSION_ENV
from .readers import continuation_ids, conversation_server

_NEVER = datetime.min.replace(tzinfo=UTC)


def continuations(records: Sequence[SessionRecord], session_id: str) -> list[SessionRecord]:
    """``session_id``'s record and the records that continue it, transitively
    (:func:`~.readers.continuation_ids`)."""
    ids = continuation_ids(((r.session_id, r.previous_session) for r in records), session_id)
    return [record for record in records if record.session_id in ids]


def find_committer(
    records: Sequence[SessionRecord],
    session_id: str | None,
    ancestors: frozenset[int],
    host: str,
    alive: Callable[[SessionRecord], bool],
) -> SessionRecord | None:
    """The committing session's record (module doc), or None for a person.

    Args:
        records: every session record of the store.
        session_id: ``HEARTBEAT_SESSION_ID``, when set.
        ancestors: this process's ancestor pids (the hook's shell, git, the
            agent's shell, the agent).
        host: this host's name.
        alive: True when a record's server process runs (proof of death rules).
    """
    if session_id:
        chain = continuations(records, session_id)
        live = [r for r in chain if r.ended_at is None and r.pid != r.client_pid and alive(r)]
        if live:
            return max(live, key=_newest)
        claimed = [r for r in chain if r.plan_id is not None or r.claim_lost is not None]
        if claimed:
            return max(claimed, key=_newest)
    return conversation_server(records, ancestors, host, alive)


def held_claim(record: SessionRecord) -> ClaimRef | None:
    """The claim the record says it holds, or None."""
    if record.plan_id is None or record.fencing_token is None:
        return None
    return ClaimRef(record.plan_id, record.fencing_token)


def claim_to_check(record: SessionRecord) -> ClaimRef | None:
    """The claim to check against the ledger: the held one, else the one the
    record says it lost (its plan and token)."""
    held = held_claim(record)
    if held is not None:
        return held
    lost = record.claim_lost
    if lost is not None and lost.fencing_token is not None:
        return ClaimRef(lost.plan_id, lost.fencing_token)
    return None


def _newest(record: SessionRecord) -> tuple[datetime, datetime]:
    return (record.last_heartbeat or _NEVER, record.started_at or _NEVER)


__all__ = ["SESSION_ENV", "claim_to_check", "continuations", "find_committer", "held_claim"]
