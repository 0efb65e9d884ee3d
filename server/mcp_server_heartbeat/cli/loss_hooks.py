"""Loss pushed into the conversation: ``mcp-server-heartbeat hook post-tool-use``
and ``hook user-prompt-submit``.

Claude Code runs ``PostToolUse`` after every tool call and
``UserPromptSubmit`` on every prompt, with the hook's JSON on stdin
(``session_id``, ``cwd``, ``hook_event_name``, ...). The first time after
this conversation's session lost a claim to another session, the hook prints::

    {"hookSpecificOutput": {"hookEventName": "PostToolUse",
     "additionalContext": "Your claim on plan 043 (token 7) was taken over at
     14:02 UTC by session 9d81e4b2 (forced: your session had been stale for
     6 min). Stop work on 043 and check with that session before you continue."}}

and nothing at all when nothing was lost, or when the loss was told already.

Which session: the payload's ``session_id``, the sessions continuing it as
``<id>-2``, ... and, after ``/clear``, the live server of this client
(:func:`~.light_hook.conversation_records`). What was lost, read from the
store without pydantic (:class:`~mcp_server_heartbeat.store.LightReader`):

* the record still shows a plan whose ledger now names another holder (the
  session's own server has not noticed yet), or
* the record's ``claim_lost`` names a new holder (the takeover rewrote the
  record, or the server's heartbeat noticed and cleared ``plan_id``);

the details (when, forced, how stale) come from the event log's
``claim_taken_over`` event naming this session as ``previous_holder``.
A release is not a loss to tell (the session released it, or its session
ended).

Once only: the notice is recorded as a ``loss_notified`` event (loser,
plan, lost token) inside one store transaction that first checks no such
event exists, so of several hook processes running at once (parallel tool
calls) exactly one prints it. Only that step loads the store's models; the
usual path (nothing lost, or already told) reads plain JSON.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..host.config import Config
from ..store import LightReader, open_light_reader
from .light_hook import (
    Payload,
    config_of,
    conversation_records,
    disarm_watchdog,
    never_fail,
    print_context,
    read_payload,
)
from .plain import as_int, as_time

LOCK_TIMEOUT_S = 0.5
"""Seconds the hook waits for the store's lock when it records a notice."""
EVENT_KINDS = frozenset({"claim_taken_over", "loss_notified"})
"""The event kinds the hook reads for a lost plan."""
SHORT_ID_CHARS = 8
"""A session id is shown by its first 8 characters (as ``status`` does)."""


@dataclass(frozen=True)
class Loss:
    """A claim this conversation's session lost to another session.

    ``session_id`` is the loser (this conversation's session), ``fencing_token``
    the token it held (None when its record did not say), ``taken_by`` the new
    holder, ``at`` when (aware UTC, None when unknown), ``reason`` the
    takeover's (``forced_stale``, ``proof_of_death``, ``holder_ended``,
    ``holder_missing``, or None), ``holder_age_s`` seconds since the loser's
    last heartbeat when it was taken (None when unknown).
    """

    session_id: str
    plan_id: str
    fencing_token: int | None
    taken_by: str
    at: datetime | None = None
    reason: str | None = None
    forced: bool = False
    holder_age_s: float | None = None

    def key(self) -> tuple[str, str, int | None]:
        """What a ``loss_notified`` event matches: loser, plan, lost token."""
        return (self.session_id, self.plan_id, self.fencing_token)


def find_losses(records: list[dict[str, Any]], reader: LightReader) -> list[Loss]:
    """The losses ``records`` (this conversation's, as dicts) show, one per
    (session, plan, token), without their details (see :func:`with_details`).
    A plan that passed to another of these sessions (a successor ``<id>-2``)
    was not lost."""
    found: dict[tuple[str, str, int | None], Loss] = {}
    ours = {record.get("session_id") for record in records}
    for record in records:
        sid = record.get("session_id")
        if not isinstance(sid, str):
            continue
        plan, token = record.get("plan_id"), as_int(record.get("fencing_token"))
        if isinstance(plan, str) and plan:
            ledger = reader.claim(plan)
            holder = ledger.get("holder") if ledger else None
            if isinstance(holder, str) and holder not in ours:
                loss = Loss(sid, plan, token, holder, as_time(ledger.get("claimed_at")))
                found.setdefault(loss.key(), loss)
        lost = record.get("claim_lost")
        if isinstance(lost, dict):
            plan, taken_by = lost.get("plan_id"), lost.get("taken_by")
            if isinstance(plan, str) and isinstance(taken_by, str) and taken_by not in ours:
                loss = Loss(
                    sid, plan, as_int(lost.get("fencing_token")), taken_by, as_time(lost.get("at"))
                )
                found.setdefault(loss.key(), loss)
    return list(found.values())


def notified(loss: Loss, events: list[dict[str, Any]]) -> bool:
    """True when ``events`` hold a ``loss_notified`` event for ``loss``."""
    return any(
        event.get("event") == "loss_notified"
        and event.get("session_id") == loss.session_id
        and event.get("plan_id") == loss.plan_id
        and as_int(event.get("fencing_token")) == loss.fencing_token
        for event in events
    )


def with_details(loss: Loss, events: list[dict[str, Any]]) -> Loss:
    """``loss`` with when, why and how stale from the newest ``claim_taken_over``
    event of its plan that displaced ``loss.session_id`` in favour of its new
    holder (``events``: the plan's events, oldest first)."""
    for event in reversed(events):
        if (
            event.get("event") == "claim_taken_over"
            and event.get("previous_holder") == loss.session_id
            and event.get("session_id") == loss.taken_by
        ):
            reason = event.get("reason")
            age = event.get("holder_heartbeat_age_s")
            return Loss(
                loss.session_id,
                loss.plan_id,
                loss.fencing_token,
                loss.taken_by,
                as_time(event.get("at")) or loss.at,
                reason if isinstance(reason, str) else None,
                event.get("force") is True,
                float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None,
            )
    return loss


REASONS = {
    "proof_of_death": "your session's process was found dead",
    "holder_ended": "your session had ended",
    "holder_missing": "your session's record was missing",
}


def notice(loss: Loss, now: datetime) -> str:
    """The sentence the agent reads, e.g. "Your claim on plan 043 (token 7) was
    taken over at 14:02 UTC by session 9d81e4b2 (forced: your session had been
    stale for 6 min). Stop work on 043 and check with that session before you
    continue." (``now``: aware UTC, to say the date of a loss on another day)."""
    token = f" (token {loss.fencing_token})" if loss.fencing_token is not None else ""
    when = ""
    if loss.at is not None:
        at = loss.at.astimezone(now.tzinfo)
        when = f" at {at:%H:%M} UTC" if at.date() == now.date() else f" at {at:%Y-%m-%d %H:%M} UTC"
    why = ""
    if loss.forced or loss.reason == "forced_stale":
        stale = f" for {_minutes(loss.holder_age_s)}" if loss.holder_age_s is not None else ""
        why = f" (forced: your session had been stale{stale})"
    elif loss.reason in REASONS:
        why = f" ({REASONS[loss.reason]})"
    by = loss.taken_by[:SHORT_ID_CHARS]
    return (
        f"Your claim on plan {loss.plan_id}{token} was taken over{when} by session {by}{why}. "
        f"Stop work on {loss.plan_id} and check with that session before you continue."
    )


def _minutes(seconds: float) -> str:
    """``45 s``, ``6 min``, ``2 h 5 min``."""
    total = int(max(0.0, seconds))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"


def record_notice(config: Config, loss: Loss, reader: LightReader, event_name: str) -> bool:
    """Record that ``loss`` is being told (a ``loss_notified`` event), unless it
    was told already; True when this call recorded it (and so must print it).

    Exclusive across processes: the check and the append happen inside one
    store transaction (the directory's lock, PostgreSQL's advisory lock), and
    the check reads the committed log after the lock is taken.

    Raises:
        StoreBusyError: the lock was not had within :data:`LOCK_TIMEOUT_S`
            (nothing recorded; a later hook tries again).
        StoreError: the store could not be used.
    """
    from ..domain.models import Event
    from ..store import open_store

    store = open_store(config, lock_timeout=LOCK_TIMEOUT_S)
    with store.transaction() as tx:
        if notified(loss, reader.plan_events(loss.plan_id, EVENT_KINDS)):
            return False
        tx.append_event(
            Event(
                at=tx.now(),
                event="loss_notified",
                session_id=loss.session_id,
                plan_id=loss.plan_id,
                fencing_token=loss.fencing_token,
                taken_by=loss.taken_by,
                reason=f"{event_name} hook",
                host=socket.gethostname(),
            )
        )
    return True


def losses_to_tell(payload: Payload, config: Config) -> list[tuple[Loss, datetime]]:
    """The losses not told yet, with details, and the store's "now" (light reads only)."""
    reader = open_light_reader(config)
    records = reader.session_records()
    if not records:
        return []
    now = reader.now()
    mine = conversation_records(
        records, payload.session_id, now, config.thresholds, socket.gethostname()
    )
    told: list[tuple[Loss, datetime]] = []
    for loss in find_losses(mine, reader):
        events = reader.plan_events(loss.plan_id, EVENT_KINDS)
        if not notified(loss, events):
            told.append((with_details(loss, events), now))
    return told


def run_hook(args: argparse.Namespace, event_name: str, command: str) -> int:
    """Print the notice of each loss not told yet (at most once per loss); exit 0."""
    with never_fail(command):
        payload = read_payload()
        config = config_of(args, payload)
        if not config.enabled.value:
            return 0
        pending = losses_to_tell(payload, config)
        if not pending:
            return 0
        reader = open_light_reader(config)
        texts = []
        for loss, now in pending:
            if record_notice(config, loss, reader, command):
                # Recorded as told: from here it must be printed, so the watchdog
                # may not end the hook any more (each further record is bounded
                # by the lock timeout).
                disarm_watchdog()
                texts.append(notice(loss, now))
        if texts:
            print_context(event_name, "\n".join(texts))
    return 0


def run_post_tool_use(args: argparse.Namespace) -> int:
    """``hook post-tool-use`` (Claude Code's PostToolUse): a lost claim, told once."""
    return run_hook(args, "PostToolUse", "post-tool-use")


def run_user_prompt_submit(args: argparse.Namespace) -> int:
    """``hook user-prompt-submit`` (Claude Code's UserPromptSubmit): a lost claim, told once."""
    return run_hook(args, "UserPromptSubmit", "user-prompt-submit")


__all__ = [
    "Loss",
    "find_losses",
    "losses_to_tell",
    "notice",
    "notified",
    "record_notice",
    "run_post_tool_use",
    "run_user_prompt_submit",
    "with_details",
]
