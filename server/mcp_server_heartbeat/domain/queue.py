"""The wait queue of a plan (``wait_for_plan``): first come, first served, pure.

The queue lives in the plan's claim ledger (:attr:`~.models.ClaimRecord.waiters`),
so every process sharing the store (any backend) sees one order and changes it
inside the same store transaction as the claim itself. An entry is
``{session_id, since, until}`` (UTC); the queue is served by ``since``.

An entry counts only while its session is live (active or idle: it is still
beating, so it is still waiting) and ``until`` has not passed: a waiter that is
stale, proven dead, ended or whose record is missing is skipped and dropped by
the next waiter or claim, and so is an expired one. A wait that is cancelled,
or ends its session, removes its own entry; one that times out keeps it for
:data:`RETRY_GRACE_S` seconds, so calling ``wait_for_plan`` again keeps the place.

Rules (issue 12, part 2; decisions noted in the README section "Waiting for a plan"):

* a waiter is granted the plan only at the head of the live queue, and only
  as ``claim_plan`` would grant it without ``force`` (free, or the holder
  proven dead, ended or missing);
* ``claim_plan`` from a session that is not the head is refused with outcome
  ``reserved`` while a live waiter is queued and the plan could be granted
  without force (waiters are not starved); a forced takeover of a stale
  holder is not held back by the queue (force is an explicit decision about
  the holder, which no waiter can make: they never force).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from .models import ClaimRecord, SessionView, Waiter

RETRY_GRACE_S = 10.0
"""How long (seconds) a timed-out wait's entry stays in the queue, so the
caller can call ``wait_for_plan`` again without losing its place."""

DEFAULT_WAIT_S = 60.0
"""``wait_for_plan``'s default ``timeout_s`` (seconds)."""

MAX_WAIT_S = 300.0
"""The longest single ``wait_for_plan`` (seconds): larger values are refused
with a clear error (clients time a request out after a few minutes)."""


def waiters_of(ledger: ClaimRecord | None) -> list[Waiter]:
    """The ledger's queue, oldest first (empty for a plan never claimed)."""
    if ledger is None:
        return []
    return sorted(ledger.waiters, key=lambda waiter: (waiter.since, waiter.session_id))


def live_queue(
    waiters: list[Waiter], now: datetime, live: Callable[[str], bool], keep: str | None = None
) -> list[Waiter]:
    """``waiters`` without expired entries (``until`` before ``now``, UTC) and
    without sessions ``live`` says are not live; ``keep`` (the caller's own
    session) is never judged by ``live``."""
    return [
        waiter
        for waiter in waiters
        if waiter.until >= now and (waiter.session_id == keep or live(waiter.session_id))
    ]


def joined(waiters: list[Waiter], session_id: str, now: datetime, until: datetime) -> list[Waiter]:
    """``waiters`` with ``session_id`` queued: appended at the end (``since`` =
    ``now``) if absent; if present it keeps its place and ``until`` is pushed
    to ``until`` (never shortened)."""
    out: list[Waiter] = []
    found = False
    for waiter in waiters:
        if waiter.session_id == session_id:
            found = True
            waiter = waiter.model_copy(update={"until": max(waiter.until, until)})
        out.append(waiter)
    if not found:
        out.append(Waiter(session_id=session_id, since=now, until=until))
    return out


def without(waiters: list[Waiter], session_id: str) -> list[Waiter]:
    """``waiters`` without ``session_id``'s entry."""
    return [waiter for waiter in waiters if waiter.session_id != session_id]


def expiring(waiters: list[Waiter], session_id: str, until: datetime) -> list[Waiter]:
    """``waiters`` with ``session_id``'s entry expiring at ``until`` (UTC): the
    grace of a timed-out wait."""
    return [
        waiter.model_copy(update={"until": until}) if waiter.session_id == session_id else waiter
        for waiter in waiters
    ]


def position(waiters: list[Waiter], session_id: str) -> int | None:
    """``session_id``'s place in ``waiters`` (1 = head), or None when not queued."""
    for index, waiter in enumerate(waiters, start=1):
        if waiter.session_id == session_id:
            return index
    return None


def grace_until(now: datetime) -> datetime:
    """When a timed-out wait's entry expires: ``now`` plus :data:`RETRY_GRACE_S`."""
    return now + timedelta(seconds=RETRY_GRACE_S)


def check_timeout(timeout_s: object) -> float:
    """``timeout_s`` as seconds, if it is a number in [0, :data:`MAX_WAIT_S`].

    Raises:
        ValueError: anything else, saying what is accepted (the MCP layer's
            schema refuses it first; this guards every other caller).
    """
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
        raise ValueError(f"timeout_s must be a number of seconds, 0 to {MAX_WAIT_S:.0f}")
    if not 0 <= timeout_s <= MAX_WAIT_S:
        raise ValueError(
            f"timeout_s must be between 0 and {MAX_WAIT_S:.0f} seconds (got {timeout_s}); "
            "to wait longer, call wait_for_plan again when it returns: your place in the "
            f"queue is kept for {RETRY_GRACE_S:.0f} s"
        )
    return float(timeout_s)


def reserved_message(plan_id: str, head: SessionView, since: datetime, ahead: int) -> str:
    """The ``reserved`` refusal of ``claim_plan``: who waits first and what to do."""
    others = "" if ahead <= 1 else f" ({ahead} sessions are waiting)"
    return (
        f"Plan {plan_id} could be claimed, but session {head.session_id} has been waiting "
        f"for it since {since:%H:%M:%S} UTC{others}; waiters are served first come, first "
        f"served. Call wait_for_plan('{plan_id}') to queue behind them, or pick another plan."
    )


def waiting_message(plan_id: str, place: int | None, holder: SessionView | None) -> str:
    """The progress text while waiting: who holds the plan and the caller's place."""
    who = "free" if holder is None else f"held by {holder.session_id} ({holder.status})"
    where = "" if place is None else f"; you are number {place} in the queue"
    return f"Waiting for plan {plan_id}: {who}{where}."


def timed_out_message(base: str, waited_s: float, place: int | None) -> str:
    """A timed-out wait's message: the refusal's text, how long it waited, and
    how to keep the place."""
    where = "" if place is None else f" You are number {place} in the queue;"
    return (
        f"{base} Waited {waited_s:.0f} s.{where} call wait_for_plan again within "
        f"{RETRY_GRACE_S:.0f} s to keep your place."
    )


__all__ = [
    "DEFAULT_WAIT_S",
    "MAX_WAIT_S",
    "RETRY_GRACE_S",
    "check_timeout",
    "expiring",
    "grace_until",
    "joined",
    "live_queue",
    "position",
    "reserved_message",
    "timed_out_message",
    "waiters_of",
    "waiting_message",
    "without",
]
