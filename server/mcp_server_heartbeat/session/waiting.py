"""The store side of ``wait_for_plan``: one attempt at a time, and the queue.

Each attempt is one short store transaction under the session's mutex (so
the background heartbeat and other tools run between attempts): it drops the
queue's dead and expired entries, queues this session if it is not queued,
and claims the plan exactly as ``claim_plan`` without ``force`` would, but
only when this session is the head of the live queue. The queue rules are
pure (:mod:`~mcp_server_heartbeat.domain.queue`); the waiting itself (wake-ups,
progress, cancellation) is :mod:`.wait_loop`.

:class:`WaitOperations` is mixed into :class:`~.service.SessionService`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..domain import lease, queue
from ..domain.errors import StoreError
from ..domain.models import ClaimRecord, ClaimResult, SessionRecord, SessionView, Waiter
from . import readers

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..domain.clock import Clock
    from ..domain.liveness import Observer, Thresholds
    from ..domain.models import TakeoverReason
    from ..host.probe import ProcessProbe
    from ..store import Store, Transaction

LIVE_STATUSES = frozenset({"active", "idle"})
"""The statuses of a waiter that still counts: it is beating, so it still waits."""


@dataclass(frozen=True)
class WaitStep:
    """What one attempt found.

    ``done``: the answer is final (claimed, taken_over, already_yours,
    holding_other); otherwise keep waiting. ``place``: this session's place in
    the live queue (1 = next), None when not queued.
    """

    result: Callable[[], ClaimResult]
    done: bool
    place: int | None
    holder: SessionView | None


class WaitOperations:
    """The attempts and queue changes of ``wait_for_plan`` (mixed into the service)."""

    if TYPE_CHECKING:  # the service's attributes and helpers these methods use
        store: Store
        thresholds: Thresholds
        _mutex: threading.RLock
        _agent_called: bool
        _ended: bool
        _clock: Clock
        _probe: ProcessProbe

        @property
        def session_id(self) -> str: ...
        def _current(self) -> SessionRecord: ...
        def _observer(self) -> Observer: ...
        def _unit(self, timeout: float | None = None) -> AbstractContextManager[Transaction]: ...
        def _superseded(self, tx: Transaction) -> bool: ...
        def superseded_error(self) -> StoreError: ...
        def _sync_claim(self, tx: Transaction) -> None: ...
        def _holder(self, tx: Transaction, ledger: ClaimRecord, now: datetime) -> lease.Holder: ...
        def _grant(
            self,
            tx: Transaction,
            plan_id: str,
            ledger: ClaimRecord | None,
            now: datetime,
            takeover: tuple[lease.Holder, TakeoverReason] | None = None,
        ) -> int: ...
        def _refuse_superseded(self) -> ClaimResult: ...

    def wait_attempt(self, plan_id: str, until: datetime) -> WaitStep:
        """One attempt of ``wait_for_plan``: claim ``plan_id`` if this session
        heads the live queue and the plan can be granted without force; else
        queue this session (its entry expires at ``until``, UTC) and say where
        it stands. Takes the mutex and one store transaction, briefly.

        Raises:
            StoreError: this session has ended (a session that is gone is never
                granted a claim) or was superseded; StoreBusyError: the store
                stayed busy (nothing changed; the caller may try again).
        """
        self._agent_called = True
        with self._mutex:
            if self._ended:
                raise StoreError(
                    f"session {self.session_id} has ended; it can no longer wait for a plan"
                )
            with self._unit() as tx:
                if self._superseded(tx):
                    return WaitStep(self._refuse_superseded, True, None, None)
                return self._attempt_within(tx, plan_id, until)

    def _attempt_within(self, tx: Transaction, plan_id: str, until: datetime) -> WaitStep:
        now = self._clock()
        self._sync_claim(tx)
        record = self._current()
        own = lease.decide_own(record, plan_id)
        ledger = tx.read_claim(plan_id)
        if own is not None:
            self._leave_within(tx, ledger)
            return WaitStep(own.result, True, None, None)
        holder = None
        if ledger is not None and ledger.holder not in (None, self.session_id):
            holder = self._holder(tx, ledger, now)
        decision = lease.decide_claim(record, plan_id, ledger, holder, False)
        line = queue.joined(self._live_queue(tx, ledger, now), self.session_id, now, until)
        place = queue.position(line, self.session_id)
        if decision.grants and place == 1:
            if ledger is not None:
                ledger = ledger.model_copy(update={"waiters": line})
            takeover = None
            if decision.holder is not None and decision.takeover_reason is not None:
                takeover = (decision.holder, decision.takeover_reason)
            self._grant(tx, plan_id, ledger, now, takeover=takeover)
            return WaitStep(decision.result, True, None, None)
        if decision.outcome == "already_yours":
            return WaitStep(decision.result, True, None, None)
        if ledger is not None and line != queue.waiters_of(ledger):
            tx.write_claim(ledger.model_copy(update={"waiters": line}))
        if decision.grants:  # free, but others were queued first
            return WaitStep(self._reserved_result(tx, plan_id, line, now), False, place, None)
        view = holder.view if holder is not None else None
        return WaitStep(decision.result, False, place, view)

    def _live_queue(
        self, tx: Transaction, ledger: ClaimRecord | None, now: datetime
    ) -> list[Waiter]:
        """The ledger's queue without expired entries and sessions that are not live."""
        observer = self._observer()

        def live(session_id: str) -> bool:
            record = tx.read_session(session_id)
            if record is None:
                return False
            view = readers.view(record, now, observer, self._probe, self.thresholds)
            return view.status in LIVE_STATUSES

        return queue.live_queue(queue.waiters_of(ledger), now, live, keep=self.session_id)

    def _view_of(self, tx: Transaction, session_id: str, now: datetime) -> SessionView | None:
        record = tx.read_session(session_id)
        if record is None:
            return None
        return readers.view(record, now, self._observer(), self._probe, self.thresholds)

    def _reserved_result(
        self, tx: Transaction, plan_id: str, line: list[Waiter], now: datetime
    ) -> Callable[[], ClaimResult]:
        """The ``reserved`` answer: the first waiter's view, and how many wait
        ahead of this session."""
        ahead = [waiter for waiter in line if waiter.session_id != self.session_id]
        mine = queue.position(line, self.session_id)
        if mine is not None:
            ahead = ahead[: mine - 1]
        head = ahead[0]
        view = self._view_of(tx, head.session_id, now)
        assert view is not None  # a live waiter has a record

        def result() -> ClaimResult:
            return ClaimResult(
                outcome="reserved",
                claimed=False,
                plan_id=plan_id,
                fencing_token=None,
                holder=view,
                previous_session=None,
                message=queue.reserved_message(plan_id, view, head.since, len(ahead)),
                queue_position=len(ahead),
            )

        return result

    def _reserved(
        self, tx: Transaction, plan_id: str, ledger: ClaimRecord | None, now: datetime
    ) -> Callable[[], ClaimResult] | None:
        """``claim_plan``'s guard against starving waiters: the ``reserved``
        answer when live sessions wait for ``plan_id`` ahead of this one, else
        None (grant as usual)."""
        line = self._live_queue(tx, ledger, now)
        if not line or line[0].session_id == self.session_id:
            return None
        return self._reserved_result(tx, plan_id, line, now)

    def leave_queue(self, plan_id: str, grace: bool = False) -> None:
        """Remove this session's entry from ``plan_id``'s queue (a cancelled or
        failed wait), or with ``grace`` let it expire :data:`~.queue.RETRY_GRACE_S`
        seconds from now (a timed-out wait, which may be called again).

        Raises:
            StoreError, StoreBusyError: the ledger could not be written (the
                entry then expires by itself at its ``until``).
        """
        with self._mutex, self._unit() as tx:
            ledger = tx.read_claim(plan_id)
            if grace and ledger is not None:
                line = queue.waiters_of(ledger)
                later = queue.expiring(line, self.session_id, queue.grace_until(self._clock()))
                if later != line:
                    tx.write_claim(ledger.model_copy(update={"waiters": later}))
                return
            self._leave_within(tx, ledger)

    def _leave_within(self, tx: Transaction, ledger: ClaimRecord | None) -> None:
        if ledger is None or queue.position(ledger.waiters, self.session_id) is None:
            return
        tx.write_claim(
            ledger.model_copy(update={"waiters": queue.without(ledger.waiters, self.session_id)})
        )


__all__ = ["LIVE_STATUSES", "WaitOperations", "WaitStep"]
