"""Fenced commits: the ``Heartbeat-Claim`` trailer and the rules that judge it.

A commit made by a session that holds a plan carries the git trailer
``Heartbeat-Claim: <plan_id>#<fencing_token>`` (e.g. ``Heartbeat-Claim: 043#7``).
Two rules read it (pure functions, no git, no store):

* **Now** (``pre-commit``, ``pre-push``): :func:`current_loss` — this session's
  claim is lost when the plan's ledger shows a later fencing token held by
  another session. A later token whose holder has released it again is not a
  loss to refuse for (the plan is free; nobody's work conflicts).
* **History** (``verify``): :func:`judge` — a commit ``P#t`` made at time ``T``
  (UTC) is refused when the plan's event log shows token ``t`` taken over (not
  released) at or before ``T``, or when ``t`` was never issued for ``P`` (no
  ledger, or ``t`` above the ledger's last token). A token later released
  normally keeps its commits valid; a token the log no longer tells about
  (events pruned by ``gc``) is reported ``unverified`` and not refused.

Tokens grow by one per grant (design: fencing tokens grow forever, ledger + 1),
so a ``claim_taken_over`` event granting token ``n`` displaced token ``n - 1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .clock import format_utc
from .errors import InvalidInputError
from .models import ClaimRecord, Event
from .validation import ID_PATTERN

TRAILER_KEY = "Heartbeat-Claim"
"""The git trailer's key (``git interpret-trailers`` matches it case-insensitively)."""

_VALUE = re.compile(rf"^({ID_PATTERN})#([1-9][0-9]{{0,17}})$")

HOW = {
    "proof_of_death": "taken over on proof that your session's process had died",
    "forced_stale": "forced: your session had gone stale",
    "holder_ended": "taken over: your session had ended",
    "holder_missing": "taken over: your session's record was missing",
}
"""How a plan changed hands, by the ledger's ``takeover_reason``, for a person."""


@dataclass(frozen=True)
class ClaimRef:
    """A plan and a fencing token, as a trailer names them (``043#7``)."""

    plan_id: str
    token: int

    def __str__(self) -> str:
        return f"{self.plan_id}#{self.token}"


def format_trailer(plan_id: str, token: int) -> str:
    """The trailer line, e.g. ``Heartbeat-Claim: 043#7``."""
    return f"{TRAILER_KEY}: {ClaimRef(plan_id, token)}"


def parse_claim(value: str) -> ClaimRef:
    """Parse a trailer value ``<plan_id>#<token>`` (surrounding blanks ignored).

    Raises:
        InvalidInputError: naming the value and the accepted form.
    """
    found = _VALUE.match(value.strip())
    if found is None:
        raise InvalidInputError(
            f"{TRAILER_KEY} value {value.strip()[:80]!r} is not accepted: use "
            "<plan_id>#<fencing_token>, e.g. 043#7"
        )
    return ClaimRef(found.group(1), int(found.group(2)))


@dataclass(frozen=True)
class Loss:
    """A claim this session held and another session holds now (a later token)."""

    plan_id: str
    token: int
    holder: str
    holder_token: int
    holder_host: str | None
    since: datetime | None
    how: str


def current_loss(
    session_ids: Iterable[str], claim: ClaimRef, ledger: ClaimRecord | None
) -> Loss | None:
    """The loss of ``claim`` (held by one of ``session_ids``: the session and the
    ids it continues) when the ledger shows a later token held by someone else;
    None otherwise (still held, released, or no ledger)."""
    mine = set(session_ids)
    if ledger is None or ledger.holder is None or ledger.holder in mine:
        return None
    if ledger.fencing_token <= claim.token:
        return None
    if ledger.acquired_by == "takeover" and ledger.takeover_reason is not None:
        how = HOW.get(ledger.takeover_reason, f"taken over ({ledger.takeover_reason})")
    else:
        how = "claimed after your claim ended"
    return Loss(
        plan_id=claim.plan_id,
        token=claim.token,
        holder=ledger.holder,
        holder_token=ledger.fencing_token,
        holder_host=ledger.holder_host,
        since=ledger.claimed_at,
        how=how,
    )


def loss_message(loss: Loss, what: str = "commit") -> str:
    """The refusal a person (or an agent) reads: who holds the plan now, since
    when, how, and what to do."""
    where = f" on host {loss.holder_host}" if loss.holder_host else ""
    since = f" since {_minute(loss.since)}" if loss.since else ""
    return (
        f"heartbeat: {what} refused: this session lost its claim on plan {loss.plan_id} "
        f"(fencing token {loss.token}). Session {loss.holder[:8]}{where} holds it{since} "
        f"with token {loss.holder_token} ({loss.how}).\n"
        f"Stop work on {loss.plan_id} and check with session {loss.holder[:8]} before you "
        f"continue: hand your changes over, or claim another plan. "
        f"To {what} anyway (e.g. to keep the work on another branch), use --no-verify."
    )


def _minute(moment: datetime) -> str:
    return format_utc(moment)[11:16] + " UTC " + format_utc(moment)[:10]


# -- history ---------------------------------------------------------------------------

Fate = Literal["taken_over", "released"]


@dataclass(frozen=True)
class TokenEnd:
    """How and when (UTC) a fencing token stopped being held, from the event log."""

    fate: Fate
    at: datetime
    by: str | None = None


def token_ends(events: Iterable[Event]) -> dict[int, TokenEnd]:
    """Each token's end, read from one plan's events (any order): a
    ``claim_taken_over`` granting ``n`` ends ``n - 1`` as taken over; a
    ``claim_released`` ends its token as released. A ``claim_lost`` (the loser
    noticing, later) counts only when the takeover itself is not in the log."""
    ends: dict[int, TokenEnd] = {}
    noticed: dict[int, TokenEnd] = {}
    for event in sorted(events, key=lambda e: e.at):
        token = event.fencing_token
        if token is None:
            continue
        if event.event == "claim_taken_over" and token - 1 not in ends:
            ends[token - 1] = TokenEnd("taken_over", event.at, event.session_id)
        elif event.event == "claim_released" and token not in ends:
            ends[token] = TokenEnd("released", event.at, event.session_id)
        elif event.event == "claim_lost" and token not in noticed:
            noticed[token] = TokenEnd("taken_over", event.at, event.taken_by)
    return {**noticed, **ends}


Status = Literal["valid", "lost", "unknown", "unverified"]
REFUSED: frozenset[str] = frozenset({"lost", "unknown"})
"""The statuses ``verify`` refuses (exit 1)."""


@dataclass(frozen=True)
class Judgment:
    """The verdict on one commit's claim: a status and a sentence saying why."""

    status: Status
    reason: str

    @property
    def refused(self) -> bool:
        """True for ``lost`` and ``unknown``."""
        return self.status in REFUSED


def judge(
    claim: ClaimRef,
    committed_at: datetime,
    ledger_token: int | None,
    ends: dict[int, TokenEnd],
) -> Judgment:
    """The history rule (module doc) for a commit naming ``claim`` made at
    ``committed_at`` (aware UTC), given the plan's last issued token (None:
    never claimed) and :func:`token_ends` of its events."""
    if ledger_token is None:
        return Judgment("unknown", f"plan {claim.plan_id} was never claimed in this store")
    if claim.token > ledger_token:
        return Judgment(
            "unknown",
            f"token {claim.token} was never issued for plan {claim.plan_id} "
            f"(the last is {ledger_token})",
        )
    end = ends.get(claim.token)
    if end is not None and end.fate == "taken_over":
        by = f" by session {end.by[:8]}" if end.by else ""
        if end.at <= committed_at:
            return Judgment(
                "lost",
                f"token {claim.token} was taken over{by} at {format_utc(end.at)}, "
                f"before the commit ({format_utc(committed_at)})",
            )
        return Judgment("valid", f"made while token {claim.token} was held (taken over later)")
    if end is not None:
        return Judgment("valid", f"made with token {claim.token} (released later)")
    if claim.token == ledger_token:
        return Judgment("valid", f"token {claim.token} is the plan's latest")
    return Judgment(
        "unverified", f"the event log no longer says how token {claim.token} ended (pruned)"
    )


__all__ = [
    "HOW",
    "REFUSED",
    "TRAILER_KEY",
    "ClaimRef",
    "Judgment",
    "Loss",
    "TokenEnd",
    "current_loss",
    "format_trailer",
    "judge",
    "loss_message",
    "parse_claim",
    "token_ends",
]
