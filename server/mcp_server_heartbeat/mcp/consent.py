"""Asking the person before ``claim_plan(force=true)`` displaces a stale holder,
through MCP elicitation (form mode).

Only a client that declared the ``elicitation`` capability (form mode; an empty
``elicitation: {}`` means form, as the 2025-06-18 revision defined it) is asked
(:func:`declared_elicitation`). The SDK would send the request whatever the
client declared, so the capability is checked here; a client without it gets
today's behaviour and never an ``elicitation/create`` request. The question
goes mid-call, which needs a connection opened with the ``initialize``
handshake (revisions up to 2025-11-25, what Claude Code and the MCP Inspector
speak); on a stateless (2026-07-28) connection the person cannot be asked that
way, so a forced takeover there changes nothing (fail closed).

The store lock and the session's mutex are not held while the person answers:
the claim is decided in one transaction, the form is sent, and the takeover is
written in a second transaction only for the holder and token the person saw
(:meth:`~mcp_server_heartbeat.session.claims.ClaimOperations.claim_or_ask`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.server.mcpserver import Context

from ..domain.consent import MAX_ASKS, Answer, ForceQuestion, confirmed, force_declined
from ..domain.lease import ClaimDecision
from ..domain.models import ClaimResult
from ..session.service import SessionService

log = logging.getLogger(__name__)

FIRST_STATELESS_REVISION = "2026-07-28"
"""From this protocol revision on, a tool asks through ``InputRequiredResult``
round trips instead of a request mid-call; this server does not ask that way
yet: a forced takeover there is ``unavailable`` to ask, so it changes nothing."""

Run = Callable[[Callable[[SessionService], Any]], Any]
"""Runs one service operation as a tool does (``tools._call``)."""


def declared_elicitation(ctx: Context) -> bool:
    """True when the client declared form-mode elicitation in ``initialize``
    (``capabilities.elicitation`` with ``form``, or empty: form by default)."""
    params = ctx.session.client_params
    capabilities = params.capabilities if params is not None else None
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None:
        return False
    return elicitation.form is not None or elicitation.url is None


def handshake_connection(ctx: Context) -> bool:
    """True when the negotiated revision predates stateless requests, so a
    server-to-client request can be sent while the tool call is open."""
    version = ctx.protocol_version
    return version is None or version < FIRST_STATELESS_REVISION


async def ask_person(ctx: Context, question: ForceQuestion) -> Answer:
    """Show ``question`` to the person (``elicitation/create``, form mode) and
    return the answer; a failed request (the client answered an error, or the
    connection cannot carry it) is ``unavailable``, which changes nothing."""
    if not handshake_connection(ctx):
        return "unavailable"
    try:
        result = await ctx.session.elicit_form(
            question.message(), question.schema(), related_request_id=ctx.request_id
        )
    except Exception as exc:  # an error answer from the client, a lost connection
        log.warning("could not ask about forcing plan %s: %s", question.plan_id, exc)
        return "unavailable"
    if result.action == "accept":
        return "accept" if confirmed(result.action, result.content) else "decline"
    return "cancel" if result.action == "cancel" else "decline"


def _claim_or_ask(
    plan_id: str, accepted: ForceQuestion | None, service: SessionService
) -> ClaimResult | ForceQuestion:
    return service.claim_or_ask(plan_id, accepted)


async def claim_with_consent(ctx: Context, run: Run, plan_id: str) -> ClaimResult:
    """``claim_plan(plan_id, force=true)`` for a client that can ask the person.

    Each round is one transaction in a worker thread (no lock held between
    them); a forced takeover is asked before it is written, and asked again
    (at most :data:`~.consent.MAX_ASKS` times) if the holder or its token changed
    while the person answered. Declined, cancelled or unanswerable: the outcome
    is ``force_declined`` and nothing changed.
    """
    accepted: ForceQuestion | None = None
    question: ForceQuestion | None = None
    for _ in range(MAX_ASKS):
        answer = await anyio.to_thread.run_sync(
            functools.partial(run, functools.partial(_claim_or_ask, plan_id, accepted))
        )
        if isinstance(answer, ClaimResult):
            return answer
        question = answer
        reply = await ask_person(ctx, question)
        log.info("person's answer to forcing plan %s: %s", plan_id, reply)
        if reply != "accept":
            return force_declined(question, reply)
        accepted = question
    assert question is not None
    # The holder kept changing while the person answered: leave the plan to it.
    return ClaimDecision("held_by_other", plan_id, holder=question.holder).result()


__all__ = [
    "FIRST_STATELESS_REVISION",
    "ask_person",
    "claim_with_consent",
    "declared_elicitation",
    "handshake_connection",
]
