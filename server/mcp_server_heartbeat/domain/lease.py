"""The lease rules of ``claim_plan`` and ``release``, and how a holder learns of
its loss: pure decisions and the messages the agent reads.

Inputs are facts already read (this session's record, the plan's claim ledger,
the holder's record and its liveness as the reader judged it, ``force``);
nothing here reads a store, a clock or a process. The service reads those
facts inside the store's lock, asks this module what to do, and performs the
writes the decision names. The rules (design contract, ``claim_plan``):

* **One live claim per plan.** The ledger names the holder; a plan with no
  holder (or no ledger) is free.
* **Fencing tokens grow forever.** A claim gets ``ledger.fencing_token + 1``
  (:func:`next_token`); the ledger keeps the last token after release.
* **A live holder with a fresh heartbeat is never displaced**, ``force`` or
  not. A holder proven dead (``status == "dead"``: same host, boot and PID
  namespace, process gone or PID reused) loses the plan automatically
  (``proof_of_death``); one that ended without releasing loses it too
  (``holder_ended``); a stale holder not proven dead — a remote one is never
  proven dead — loses it only to ``force`` (``forced_stale``, or
  ``holder_missing`` when its record is gone and only the ledger describes it).
  This is the lease rule of Chubby/ZooKeeper-style systems with the lock-file
  rule (PostgreSQL, QLockFile) for proof of death.

Messages are built only when a result is asked for (:meth:`ClaimDecision.result`,
:meth:`ReleaseDecision.result`), so the service builds them after it has left
the store's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .models import (
    ClaimLost,
    ClaimOutcome,
    ClaimRecord,
    ClaimResult,
    ReleaseOutcome,
    ReleaseResult,
    SessionRecord,
    SessionView,
    TakeoverReason,
)

FORCED_REASONS: frozenset[TakeoverReason] = frozenset({"forced_stale", "holder_missing"})
"""Takeover reasons that needed ``force=true`` (logged as ``force`` in the event)."""


class Claimant(Protocol):
    """The process a granted claim names as holder (a session's
    :class:`~mcp_server_heartbeat.host.identity.Identity`, or its record)."""

    @property
    def session_id(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def pid_started_at(self) -> datetime | None: ...
    @property
    def pid_start_ticks(self) -> int | None: ...
    @property
    def boot_id(self) -> str | None: ...
    @property
    def pid_namespace(self) -> str | None: ...


@dataclass(frozen=True)
class Holder:
    """The current holder of a plan as the claimant sees it.

    ``record`` is its session record, or — when ``on_disk`` is False — a record
    rebuilt from the ledger (:func:`holder_record`); ``view`` is that record
    with the liveness the claimant judged (status, process_alive, ...).
    """

    record: SessionRecord
    view: SessionView
    on_disk: bool


def holder_record(ledger: ClaimRecord, record: SessionRecord | None) -> tuple[SessionRecord, bool]:
    """The holder's record to judge, and whether it was read from the store.

    The ledger is the truth about which process holds the plan: the holder is
    judged by the process the ledger recorded (host, pid, start, boot and PID
    namespace), with the record's heartbeat. A record that names another process
    (its rewrite after an adoption failed, so it still names the dead process
    adopted from) never decides: a live adopter is not taken for dead. With no
    readable record, the ledger alone is judged: it can still be proven dead.
    Returns ``(record, on_disk)``.
    """
    assert ledger.holder is not None
    if record is not None:
        if ledger.holder_pid is None or (record.host, record.pid) == (
            ledger.holder_host,
            ledger.holder_pid,
        ):
            return record, True
        return record.model_copy(update=_ledger_process(ledger)), True
    return (
        SessionRecord(
            session_id=ledger.holder,
            plan_id=ledger.plan_id,
            fencing_token=ledger.fencing_token,
            claimed_at=ledger.claimed_at,
            host=ledger.holder_host,
            pid=ledger.holder_pid,
            pid_started_at=ledger.holder_pid_started_at,
            pid_start_ticks=ledger.holder_pid_start_ticks,
            boot_id=ledger.holder_boot_id,
            pid_namespace=ledger.holder_pid_namespace,
        ),
        False,
    )


def _ledger_process(ledger: ClaimRecord) -> dict[str, object]:
    """The holder's process as the ledger names it, as record fields."""
    return {
        "host": ledger.holder_host,
        "pid": ledger.holder_pid,
        "pid_started_at": ledger.holder_pid_started_at,
        "pid_start_ticks": ledger.holder_pid_start_ticks,
        "boot_id": ledger.holder_boot_id,
        "pid_namespace": ledger.holder_pid_namespace,
    }


def next_token(ledger: ClaimRecord | None) -> int:
    """The fencing token of the next claim of the plan: the ledger's last token + 1
    (1 for a plan never claimed)."""
    return (ledger.fencing_token if ledger else 0) + 1


def takeover_reason(holder: Holder, force: bool) -> TakeoverReason | None:
    """Why ``holder`` may be displaced, or None when it may not.

    ``dead`` → proof_of_death; ``ended`` → holder_ended; ``stale`` with
    ``force`` → forced_stale (holder_missing when its record is gone). Active
    and idle holders (fresh heartbeat) are never displaced, ``force`` or not.
    """
    status = holder.view.status
    if status == "dead":
        return "proof_of_death"
    if status == "ended":
        return "holder_ended"
    if status == "stale" and force:
        return "forced_stale" if holder.on_disk else "holder_missing"
    return None


REASON_TEXT: dict[TakeoverReason, str] = {
    "proof_of_death": "its process is proven dead",
    "forced_stale": "it was stale and you forced the takeover",
    "holder_ended": "it had ended without releasing",
    "holder_missing": "its record is gone and you forced the takeover",
}
"""How each takeover reason reads in the ``taken_over`` message."""


def refusal(plan_id: str, holder: SessionView) -> str:
    """The ``held_by_other`` message: who holds ``plan_id`` and what to do next."""
    who = f"session {holder.session_id}"
    if holder.status == "stale":
        age = "never" if holder.heartbeat_age_s is None else f"{holder.heartbeat_age_s:.0f} s ago"
        return (
            f"Plan {plan_id} is held by {who}, which is stale (last heartbeat {age}) but not "
            "proven dead. If you are sure it is abandoned, call claim_plan again with "
            "force=true; otherwise pick another plan."
        )
    return (
        f"Plan {plan_id} is held by {who} ({holder.status}, last heartbeat "
        f"{holder.heartbeat_age_s or 0:.0f} s ago, branch {holder.branch or 'unknown'}). "
        "A live holder is never displaced: pick another plan, or coordinate with that session."
    )


# -- claim ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimDecision:
    """What ``claim_plan`` decided, before anything is written.

    ``outcome`` is the contract's; ``fencing_token`` is the token to grant
    (claimed, taken_over) or the one already held (already_yours);
    ``holder`` is the holder's view on held_by_other; ``previous_session``
    the displaced holder and ``takeover_reason`` why, on taken_over;
    ``held_plan`` the other plan on holding_other.
    """

    outcome: ClaimOutcome
    plan_id: str
    fencing_token: int | None = None
    holder: Holder | None = None
    takeover_reason: TakeoverReason | None = None
    held_plan: str | None = None

    @property
    def grants(self) -> bool:
        """True when the service must write a new claim (claimed, taken_over)."""
        return self.outcome in ("claimed", "taken_over")

    @property
    def previous_session(self) -> str | None:
        """The displaced holder's session id on taken_over, else None."""
        if self.outcome != "taken_over" or self.holder is None:
            return None
        return self.holder.record.session_id

    def message(self) -> str:
        """The text the agent reads for this outcome (word for word the contract's)."""
        plan_id, token = self.plan_id, self.fencing_token
        if self.outcome == "already_yours":
            return f"You already hold plan {plan_id} with fencing token {token}; carry on."
        if self.outcome == "holding_other":
            return (
                f"You hold plan {self.held_plan}. A session holds one plan at a "
                f"time: release {self.held_plan} first, then claim {plan_id}."
            )
        if self.outcome == "claimed":
            return (
                f"Plan {plan_id} is yours, fencing token {token}. Heartbeat while you work "
                "and release it when done."
            )
        assert self.holder is not None
        if self.outcome == "held_by_other":
            return refusal(plan_id, self.holder.view)
        assert self.takeover_reason is not None
        return (
            f"Took plan {plan_id} over from session {self.holder.record.session_id} "
            f"({REASON_TEXT[self.takeover_reason]}); your fencing token is {token}. Check the "
            "state it left (uncommitted work, branches) before going on."
        )

    def result(self) -> ClaimResult:
        """The ``claim_plan`` tool result (builds the message)."""
        claimed = self.outcome in ("claimed", "already_yours", "taken_over")
        return ClaimResult(
            outcome=self.outcome,
            claimed=claimed,
            plan_id=self.plan_id,
            fencing_token=self.fencing_token if claimed else None,
            holder=self.holder.view if self.outcome == "held_by_other" and self.holder else None,
            previous_session=self.previous_session,
            takeover_reason=self.takeover_reason,
            held_plan=self.held_plan,
            message=self.message(),
        )


def decide_own(record: SessionRecord, plan_id: str) -> ClaimDecision | None:
    """The part of ``claim_plan`` decided by this session's own record alone:
    already_yours when it holds ``plan_id``, holding_other when it holds another
    plan, else None (the ledger decides: :func:`decide_claim`)."""
    if record.plan_id == plan_id:
        return ClaimDecision("already_yours", plan_id, fencing_token=record.fencing_token)
    if record.plan_id is not None:
        return ClaimDecision("holding_other", plan_id, held_plan=record.plan_id)
    return None


def decide_claim(
    record: SessionRecord,
    plan_id: str,
    ledger: ClaimRecord | None,
    holder: Holder | None,
    force: bool,
) -> ClaimDecision:
    """Decide ``claim_plan(plan_id, force)`` for the session of ``record``.

    Args:
        record: this session's record, its claim already checked against the
            ledger (a lost claim cleared: :func:`detect_loss`).
        ledger: the plan's claim ledger, or None for a plan never claimed.
        holder: the ledger's holder with its liveness, when the ledger names
            a session other than this one (ignored otherwise).
        force: the caller's ``force``; it displaces a stale holder only.

    Returns:
        already_yours / holding_other (:func:`decide_own`); claimed with
        :func:`next_token` for a free plan; already_yours with the ledger's
        token when the ledger names this session; held_by_other when the
        holder may not be displaced (:func:`takeover_reason`); else
        taken_over with :func:`next_token`.
    """
    own = decide_own(record, plan_id)
    if own is not None:
        return own
    if ledger is None or ledger.holder is None:
        return ClaimDecision("claimed", plan_id, fencing_token=next_token(ledger))
    if ledger.holder == record.session_id:
        return ClaimDecision("already_yours", plan_id, fencing_token=ledger.fencing_token)
    assert holder is not None, "a plan held by another session needs its holder"
    reason = takeover_reason(holder, force)
    if reason is None:
        return ClaimDecision("held_by_other", plan_id, holder=holder)
    return ClaimDecision(
        "taken_over",
        plan_id,
        fencing_token=next_token(ledger),
        holder=holder,
        takeover_reason=reason,
    )


def granted_ledger(
    plan_id: str,
    token: int,
    claimant: Claimant,
    now: datetime,
    takeover: tuple[Holder, TakeoverReason] | None = None,
) -> ClaimRecord:
    """The ledger of a claim granted at ``now`` (UTC) to ``claimant`` (the
    session, its process and process space), with ``token``; on a takeover it
    names the reason and the previous holder."""
    return ClaimRecord(
        plan_id=plan_id,
        fencing_token=token,
        holder=claimant.session_id,
        holder_host=claimant.host,
        holder_pid=claimant.pid,
        holder_pid_started_at=claimant.pid_started_at,
        holder_pid_start_ticks=claimant.pid_start_ticks,
        holder_boot_id=claimant.boot_id,
        holder_pid_namespace=claimant.pid_namespace,
        claimed_at=now,
        acquired_by="takeover" if takeover else "claim",
        takeover_reason=takeover[1] if takeover else None,
        previous_holder=takeover[0].record.session_id if takeover else None,
    )


def released_ledger(ledger: ClaimRecord, now: datetime, reason: str) -> ClaimRecord:
    """``ledger`` with the plan freed at ``now`` (UTC) for ``reason``; the fencing
    token is kept, so the next claim's token is larger."""
    return ledger.model_copy(
        update={
            "holder": None,
            "holder_host": None,
            "holder_pid": None,
            "holder_pid_started_at": None,
            "holder_pid_start_ticks": None,
            "holder_boot_id": None,
            "holder_pid_namespace": None,
            "released_at": now,
            "release_reason": reason,
        }
    )


def without_claim(record: SessionRecord) -> SessionRecord:
    """``record`` holding no plan (plan, token and claim time cleared)."""
    return record.model_copy(update={"plan_id": None, "fencing_token": None, "claimed_at": None})


def displaced_record(
    holder: Holder, ledger: ClaimRecord, reason: str, taken_by: str
) -> SessionRecord | None:
    """The displaced holder's record with its claim cleared and ``claim_lost``
    set, so readers of the kata schema do not see two sessions on one plan; None
    when there is nothing to rewrite (no record on disk, or it no longer shows
    the plan ``ledger`` now grants to ``taken_by``)."""
    old = holder.record
    if not holder.on_disk or old.plan_id != ledger.plan_id:
        return None
    loss = ClaimLost(
        plan_id=ledger.plan_id,
        taken_by=taken_by,
        at=ledger.claimed_at,
        reason=reason,
        fencing_token=old.fencing_token,
    )
    return without_claim(old).model_copy(update={"claim_lost": loss})


# -- release -------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseDecision:
    """What ``release`` decided: ``outcome``, the plan concerned (None when the
    session holds none and named none), and for stale_token the token given
    and the caller's current token (None when it no longer holds the plan)."""

    outcome: ReleaseOutcome
    plan_id: str | None
    given_token: int | None = None
    current_token: int | None = None
    holds_plan: bool = False

    def message(self) -> str:
        """The text the agent reads for this outcome (word for word the contract's)."""
        target = self.plan_id
        if self.outcome == "released":
            return f"Released plan {target}; another session may claim it now."
        if self.outcome == "stale_token":
            current = (
                f"your token is {self.current_token}"
                if self.holds_plan
                else (f"you no longer hold plan {target}")
            )
            return (
                f"Refused: fencing token {self.given_token} is stale ({current}). "
                "Nothing was changed; call heartbeat or session_info to see what you hold."
            )
        if target is None:
            return "You hold no plan; nothing to release."
        return f"You do not hold plan {target}; nothing to release."

    def result(self) -> ReleaseResult:
        """The ``release`` tool result (builds the message)."""
        return ReleaseResult(
            outcome=self.outcome,
            released=self.outcome == "released",
            plan_id=self.plan_id,
            message=self.message(),
        )


def decide_release(
    record: SessionRecord, plan_id: str | None, fencing_token: int | None
) -> ReleaseDecision:
    """Decide ``release(plan_id?, fencing_token?)`` for the session of ``record``
    (its claim already checked against the ledger: :func:`detect_loss`).

    * not_held — it holds no plan and named none, or holds another plan than
      ``plan_id``: an idempotent no-op.
    * stale_token — ``fencing_token`` was given and is not the token of its
      claim of the plan (taken over, or re-claimed since): refused, nothing
      changes. Checked before not_held, so a stale token is always named.
    * released — the service frees the plan in its ledger (only if the ledger
      still names this session) and clears it from the record.
    """
    held = record.plan_id
    target = plan_id or held
    if target is None:
        return ReleaseDecision("not_held", None)
    if fencing_token is not None and (held != target or record.fencing_token != fencing_token):
        return ReleaseDecision(
            "stale_token",
            target,
            given_token=fencing_token,
            current_token=record.fencing_token,
            holds_plan=held == target,
        )
    if held != target:
        return ReleaseDecision("not_held", target)
    return ReleaseDecision("released", target, current_token=record.fencing_token, holds_plan=True)


# -- loss ----------------------------------------------------------------------


def detect_loss(
    session_id: str, record: SessionRecord, ledger: ClaimRecord | None
) -> ClaimLost | None:
    """Whether the claim ``record`` shows is still the ledger's (the check every
    write of a session's own record makes first, inside the store's lock).

    Args:
        session_id: the session whose record this is.
        record: its record; a record holding no plan has nothing to lose.
        ledger: the ledger of ``record.plan_id`` (None when missing).

    Returns:
        None when the ledger still names ``session_id`` with the record's
        token; else the loss: taken by the ledger's new holder (its takeover
        reason, else "claimed by another session"), or released (its release
        reason, else "claim ledger missing").
    """
    if record.plan_id is None:
        return None
    if (
        ledger is not None
        and ledger.holder == session_id
        and ledger.fencing_token == record.fencing_token
    ):
        return None
    if ledger is not None and ledger.holder is not None:
        return ClaimLost(
            plan_id=record.plan_id,
            taken_by=ledger.holder,
            at=ledger.claimed_at,
            reason=ledger.takeover_reason or "claimed by another session",
            fencing_token=record.fencing_token,
        )
    return ClaimLost(
        plan_id=record.plan_id,
        taken_by=None,
        at=ledger.released_at if ledger else None,
        reason=(ledger.release_reason if ledger else None) or "claim ledger missing",
        fencing_token=record.fencing_token,
    )


__all__ = [
    "FORCED_REASONS",
    "REASON_TEXT",
    "ClaimDecision",
    "Claimant",
    "Holder",
    "ReleaseDecision",
    "decide_claim",
    "decide_own",
    "decide_release",
    "detect_loss",
    "displaced_record",
    "granted_ledger",
    "holder_record",
    "next_token",
    "refusal",
    "released_ledger",
    "takeover_reason",
    "without_claim",
]
