"""A person asked before force: what ``claim_plan(force=true)`` shows the person
before it displaces a stale holder, and the outcome when the person says no.

Pure: the facts come from the claim's first transaction (the ledger's holder and
token, the holder's view); nothing here reads a store, a clock or the protocol.
The guarantee the service builds on it (:mod:`~mcp_server_heartbeat.session.claims`):
a forced takeover (``forced_stale``) happens only when the person accepted and
confirmed the very holder and fencing token shown (:attr:`ForceQuestion.shown`);
if either changed while the person was answering, the claim is decided again and
a still-forced takeover is asked again, never done blindly. Declined or
cancelled: nothing is written (ledger, records and events unchanged) and the
outcome is ``force_declined``. Automatic takeovers (proof of death, ended
holder, missing record) are never asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .lease import Holder
from .models import ClaimResult

CONFIRM_FIELD = "confirm"
"""The one field of the form: a boolean the person sets to confirm the takeover."""

MAX_ASKS = 3
"""How often one ``claim_plan`` call asks when the holder keeps changing while the
person answers; after that the plan is left to its holder (``held_by_other``)."""

SHORT_ID_CHARS = 8
"""Characters of a session id shown to the person (as the CLI's short ids)."""

Answer = Literal["accept", "decline", "cancel", "unavailable"]
"""What came back: the person confirmed (accept), said no (decline), dismissed the
form (cancel), or could not be asked at all (unavailable: the request failed)."""


@dataclass(frozen=True)
class ForceQuestion:
    """A forced takeover waiting for the person's confirmation.

    ``holder`` is the stale holder as the first transaction judged it (its record
    or the ledger's rebuild, and its view: heartbeat age, status, activity);
    ``holder_token`` is the fencing token the ledger names for it (N): a
    takeover grants N + 1.
    """

    plan_id: str
    holder: Holder
    holder_token: int

    @property
    def shown(self) -> tuple[str, int]:
        """``(holder session id, its fencing token)``: what the person agreed to
        displace; the takeover is written only while the ledger still says this."""
        return self.holder.record.session_id, self.holder_token

    @property
    def new_token(self) -> int:
        """The fencing token the takeover grants (the holder's + 1)."""
        return self.holder_token + 1

    def message(self) -> str:
        """The form's text: who holds the plan (short id, host, branch, worktree),
        how stale it is, what it was doing, and the fencing consequences."""
        view = self.holder.view
        short = view.session_id[:SHORT_ID_CHARS]
        where = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("host", view.host),
                ("branch", view.branch),
                ("worktree", view.worktree or view.cwd),
            )
            if value
        )
        activity = f"'{view.last_activity}'" if view.last_activity else "nothing recorded"
        return (
            f"Take plan {self.plan_id} over by force?\n"
            f"It is held by session {short}" + (f" ({where})" if where else "") + ".\n"
            f"Last heartbeat: {heartbeat_age(view.heartbeat_age_s)}; it is stale but not "
            "proven dead (its process may still be working).\n"
            f"Last activity: {activity}.\n"
            f"If you confirm: its fencing token {self.holder_token} stops being valid, this "
            f"session gets token {self.new_token}, and that session's commits and pushes "
            f"for plan {self.plan_id} will be refused.\n"
            "Decline to leave the plan with it; nothing changes."
        )

    def schema(self) -> dict[str, Any]:
        """The form's requested schema: one required boolean, false by default
        (a flat object of primitives, as MCP elicitation forms allow)."""
        short = self.holder.view.session_id[:SHORT_ID_CHARS]
        return {
            "type": "object",
            "properties": {
                CONFIRM_FIELD: {
                    "type": "boolean",
                    "title": f"Take plan {self.plan_id} over from session {short}",
                    "description": (
                        f"Its token {self.holder_token} stops being valid; you get "
                        f"{self.new_token}; its commits and pushes will be refused."
                    ),
                    "default": False,
                }
            },
            "required": [CONFIRM_FIELD],
        }


def confirmed(action: str, content: dict[str, Any] | None) -> bool:
    """True only for ``accept`` with the confirm field set to JSON ``true``
    (an accepted form with the box unticked, or any other value, is a no)."""
    return action == "accept" and content is not None and content.get(CONFIRM_FIELD) is True


def heartbeat_age(age_s: float | None) -> str:
    """A heartbeat age (seconds) as a person reads it: '45 s ago', '6 min ago',
    '2 h 5 min ago', or 'never'."""
    if age_s is None:
        return "never"
    seconds = int(age_s)
    if seconds < 120:
        return f"{seconds} s ago"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h {minutes % 60} min ago"


def force_declined(question: ForceQuestion, answer: Answer) -> ClaimResult:
    """The ``force_declined`` outcome: the person did not confirm, so nothing
    changed; ``holder`` is the holder as shown, ``claimed`` false, no token."""
    short = question.holder.view.session_id[:SHORT_ID_CHARS]
    why = {
        "decline": "The person declined",
        "cancel": "The person cancelled",
        "accept": "The person did not confirm",
        "unavailable": "The person could not be asked to confirm",
    }[answer]
    return ClaimResult(
        outcome="force_declined",
        claimed=False,
        plan_id=question.plan_id,
        fencing_token=None,
        holder=question.holder.view,
        previous_session=None,
        takeover_reason=None,
        message=(
            f"{why} the forced takeover of plan {question.plan_id} from session {short}; "
            f"nothing was changed (its claim and fencing token {question.holder_token} stand). "
            f"Do not work on plan {question.plan_id}: pick another plan, or ask the user."
        ),
    )


__all__ = [
    "CONFIRM_FIELD",
    "MAX_ASKS",
    "Answer",
    "ForceQuestion",
    "confirmed",
    "force_declined",
    "heartbeat_age",
]
