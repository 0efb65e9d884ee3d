"""The claim operations of one session: ``claim_plan``, ``release``, and the check
that its claim is still the ledger's.

The decisions and the messages the agent reads are pure
(:mod:`~mcp_server_heartbeat.domain.lease`); this module reads their inputs
inside one store transaction (the session's record, the plan's ledger, the
holder's record and its liveness) and makes the writes a decision names; the
store commits them together (the ledger is the commit point). The result and
its message are built after the transaction is over.

:class:`ClaimOperations` is mixed into :class:`~.service.SessionService`, whose
store, identity, mutex, clock and in-memory record it uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain import lease, queue
from ..domain.clock import Clock
from ..domain.consent import ForceQuestion
from ..domain.errors import InvalidInputError, StoreError
from ..domain.models import ClaimLost, ClaimRecord, ClaimResult, ReleaseResult, SessionRecord
from ..domain.validation import validate_label
from . import readers

if TYPE_CHECKING:
    from ..domain.liveness import Observer, Thresholds
    from ..domain.models import EventKind, TakeoverReason
    from ..host.identity import Identity
    from ..host.probe import ProcessProbe
    from ..store import Store, Transaction


class ClaimOperations:
    """Claim, release and loss detection of one session (mixed into the service)."""

    if TYPE_CHECKING:  # the service's attributes and helpers these methods use
        store: Store
        identity: Identity
        thresholds: Thresholds
        _mutex: threading.RLock
        _agent_called: bool
        _unreported_loss: ClaimLost | None
        _clock: Clock
        _probe: ProcessProbe
        _record: SessionRecord | None

        @property
        def session_id(self) -> str: ...
        def _current(self) -> SessionRecord: ...
        def _observer(self) -> Observer: ...
        def _beat(self, now: datetime) -> dict[str, Any]: ...
        def _log(self, tx: Transaction, kind: EventKind, now: datetime, **fields: Any) -> None: ...
        def _reserved(
            self, tx: Transaction, plan_id: str, ledger: ClaimRecord | None, now: datetime
        ) -> Callable[[], ClaimResult] | None: ...
        def _unit(self, timeout: float | None = None) -> AbstractContextManager[Transaction]: ...
        def _superseded(self, tx: Transaction) -> bool: ...
        def superseded_error(self) -> StoreError: ...
        @staticmethod
        def _without_claim(record: SessionRecord) -> SessionRecord: ...

    def claim(self, plan_id: str, force: bool = False) -> ClaimResult:
        """The ``claim_plan`` tool. Outcomes (design contract):

        * ``claimed`` — the plan was free; a new fencing token.
        * ``already_yours`` — you hold it; same token (idempotent).
        * ``holding_other`` — you hold another plan; release it first.
        * ``held_by_other`` — a live holder (fresh heartbeat), or a stale one
          without ``force``; ``holder`` is its view.
        * ``taken_over`` — the holder was proven dead (automatic), had ended
          without releasing, or was stale and ``force`` was set.
        * ``reserved`` — the plan could be granted without ``force``, but live
          sessions wait for it (``wait_for_plan``, first come, first served);
          ``holder`` is the first waiter's view (:mod:`~..domain.queue`).

        Raises:
            InvalidInputError: ``plan_id`` is not safe as a name in the store
                (ids are validated at the edge: :class:`~.ids.PlanId`).
            StoreError, StoreBusyError: nothing was changed.
        """
        self._agent_called = True
        with self._mutex:
            answer = self._claim_locked(plan_id, force)
            result = answer()  # the result and its message are built outside the lock
        assert isinstance(result, ClaimResult)
        return result

    def claim_or_ask(
        self, plan_id: str, confirmed: ForceQuestion | None = None
    ) -> ClaimResult | ForceQuestion:
        """``claim_plan(force=true)`` for a client that can ask a person (issue 12,
        part 4). One transaction, like :meth:`claim`, except for a takeover that
        would be ``forced_stale``: then nothing is written and the returned
        :class:`~.consent.ForceQuestion` says what to show the person. Ask with no
        lock held (the heartbeat goes on), then call again with the accepted
        question as ``confirmed``: the takeover is written only if the ledger
        still names the holder and token shown (:attr:`ForceQuestion.shown`);
        a freed plan, a holder now dead or live again gets today's outcome; a
        different stale holder (or token) gives a new question, never a blind
        force. On decline or cancel call nothing: :func:`~.consent.force_declined`
        builds the outcome and nothing changes. Automatic takeovers
        (proof_of_death, holder_ended, holder_missing) are never asked.

        Raises:
            InvalidInputError, StoreError, StoreBusyError: as :meth:`claim`.
        """
        self._agent_called = True
        with self._mutex:
            answer = self._claim_locked(plan_id, True, ask=True, confirmed=confirmed)
            return answer()  # built outside the lock

    def _claim_locked(
        self,
        plan_id: str,
        force: bool,
        ask: bool = False,
        confirmed: ForceQuestion | None = None,
    ) -> Callable[[], ClaimResult | ForceQuestion]:
        """Decide and write a claim inside one store transaction (under the mutex);
        returns how to build the result, which happens after the lock is left.
        With ``ask``, a ``forced_stale`` takeover not ``confirmed`` for the same
        holder and token is not written: the answer is the question to ask."""
        with self._unit() as tx:
            if self._superseded(tx):
                return self._refuse_superseded
            now = self._clock()
            self._sync_claim(tx)
            record = self._current()
            decision = lease.decide_own(record, plan_id)
            if decision is not None:
                return decision.result
            ledger = tx.read_claim(plan_id)
            holder = None
            if ledger is not None and ledger.holder not in (None, self.session_id):
                holder = self._holder(tx, ledger, now)
            decision = lease.decide_claim(record, plan_id, ledger, holder, force)
            if ask and decision.takeover_reason == "forced_stale":
                assert ledger is not None and decision.holder is not None
                question = ForceQuestion(plan_id, decision.holder, ledger.fencing_token)
                if confirmed is None or confirmed.shown != question.shown:
                    return lambda: question  # nothing written: the person decides
            if decision.grants and decision.takeover_reason not in lease.FORCED_REASONS:
                reserved = self._reserved(tx, plan_id, ledger, now)  # waiters first (.waiting)
                if reserved is not None:
                    return reserved
            if decision.outcome == "already_yours":
                assert ledger is not None
                self._record = record.model_copy(
                    update={
                        "plan_id": plan_id,
                        "fencing_token": ledger.fencing_token,
                        "claimed_at": ledger.claimed_at,
                    }
                )
                tx.write_session(self._record)
            elif decision.grants:
                takeover = None
                if decision.holder is not None and decision.takeover_reason is not None:
                    takeover = (decision.holder, decision.takeover_reason)
                token = self._grant(tx, plan_id, ledger, now, takeover=takeover)
                assert token == decision.fencing_token
            return decision.result  # the message is built after the lock is left

    def _refuse_superseded(self) -> Any:
        """The answer of a claim or release after this session was superseded."""
        raise self.superseded_error()

    def _holder(self, tx: Transaction, ledger: ClaimRecord, now: datetime) -> lease.Holder:
        """The ledger's holder with its liveness as this session sees it at ``now``."""
        assert ledger.holder is not None
        record, on_disk = lease.holder_record(ledger, tx.read_session(ledger.holder))
        view = readers.view(record, now, self._observer(), self._probe, self.thresholds)
        return lease.Holder(record, view, on_disk)

    def _grant(
        self,
        tx: Transaction,
        plan_id: str,
        ledger: ClaimRecord | None,
        now: datetime,
        takeover: tuple[lease.Holder, TakeoverReason] | None = None,
    ) -> int:
        token = lease.next_token(ledger)
        new_ledger = lease.granted_ledger(plan_id, token, self.identity, now, takeover)
        # The wait queue stays with the plan, without the new holder (.waiting).
        new_ledger.waiters = queue.without(queue.waiters_of(ledger), self.session_id)
        tx.write_claim(new_ledger)
        update: dict[str, Any] = {
            "plan_id": plan_id,
            "fencing_token": token,
            "claimed_at": now,
            # A loss recorded earlier is over once the session holds a new claim:
            # readers (the git hooks, the status line) must not act on it any more.
            "claim_lost": None,
            **self._beat(now),
            "last_call_at": now,
        }
        # The ledger is the commit point (the store writes it first): if a record
        # write after it fails (ENOSPC), the claim still stands and the next beat
        # rewrites the record (fault suite: disk).
        if takeover:
            update["previous_session"] = takeover[0].record.session_id
        self._record = self._current().model_copy(update=update)
        if takeover:
            self._mark_displaced(tx, takeover[0], new_ledger, takeover[1])
        tx.write_session(self._current())
        if takeover:
            self._log(
                tx,
                "claim_taken_over",
                now,
                plan_id=plan_id,
                fencing_token=token,
                reason=takeover[1],
                previous_holder=takeover[0].record.session_id,
                force=takeover[1] in lease.FORCED_REASONS,
                holder_heartbeat_age_s=takeover[0].view.heartbeat_age_s,
            )
        else:
            self._log(tx, "claim_granted", now, plan_id=plan_id, fencing_token=token)
        return token

    def _mark_displaced(
        self, tx: Transaction, holder: lease.Holder, ledger: ClaimRecord, reason: str
    ) -> None:
        """Clear the displaced holder's claim in its record, so readers of the kata
        schema do not see two sessions on one plan (:func:`~.lease.displaced_record`)."""
        displaced = lease.displaced_record(holder, ledger, reason, self.session_id)
        if displaced is None:
            return
        tx.write_session(displaced)

    def release(
        self,
        plan_id: str | None = None,
        reason: str | None = None,
        fencing_token: int | None = None,
    ) -> ReleaseResult:
        """The ``release`` tool. Outcomes: ``released``; ``not_held`` (you do not
        hold it: an idempotent no-op); ``stale_token`` (the token given is not the
        one of your current claim — it was taken over or re-claimed — refused,
        nothing changed).

        Args:
            plan_id: the plan to release; default: the one you hold.
            reason: a label kept in the ledger (200 characters at most).
            fencing_token: when given, release only if it is your claim's token.

        Raises:
            InvalidInputError: a bad plan id, reason or token.
            StoreError, StoreBusyError: nothing was changed.
        """
        self._agent_called = True
        if reason is not None:
            validate_label(reason, "reason")
        if fencing_token is not None and (
            isinstance(fencing_token, bool)
            or not isinstance(fencing_token, int)
            or fencing_token < 1
        ):
            raise InvalidInputError("fencing_token must be a whole number >= 1 (from claim_plan)")
        with self._mutex:
            answer = self._release_locked(plan_id, reason, fencing_token)
            return answer()  # the result and its message are built outside the lock

    def _release_locked(
        self, plan_id: str | None, reason: str | None, fencing_token: int | None
    ) -> Callable[[], ReleaseResult]:
        """Decide and write a release inside one store transaction (under the mutex);
        returns how to build the result, which happens after the lock is left."""
        with self._unit() as tx:
            if self._superseded(tx):
                return self._refuse_superseded
            now = self._clock()
            self._sync_claim(tx)
            record = self._current()
            decision = lease.decide_release(record, plan_id, fencing_token)
            if decision.outcome != "released":
                return decision.result  # the message is built after the lock is left
            target = decision.plan_id
            self._release_ledger(tx, record, now, reason or "released")
            self._record = self._without_claim(record).model_copy(
                update={**self._beat(now), "last_call_at": now}
            )
            tx.write_session(self._current())
            self._log(
                tx,
                "claim_released",
                now,
                plan_id=target,
                fencing_token=record.fencing_token,
                reason=reason or "released",
            )
            return decision.result

    def _release_ledger(
        self, tx: Transaction, record: SessionRecord, now: datetime, reason: str
    ) -> bool:
        """Free the plan in its ledger if it names this session; True if it did."""
        assert record.plan_id is not None
        ledger = tx.read_claim(record.plan_id)
        if ledger is None or ledger.holder != self.session_id:
            return False
        tx.write_claim(lease.released_ledger(ledger, now, reason))
        return True

    def _sync_claim(self, tx: Transaction) -> None:
        """Check the held claim against the ledger (inside ``tx``); on loss,
        clear it from this session's record and remember the loss."""
        record = self._current()
        if record.plan_id is None:
            return
        ledger = tx.read_claim(record.plan_id)
        loss = lease.detect_loss(self.session_id, record, ledger)
        if loss is None:
            return
        self._unreported_loss = loss
        self._record = self._without_claim(record).model_copy(update={"claim_lost": loss})
        tx.write_session(self._record)  # the record and the claim_lost event commit together
        self._log(
            tx,
            "claim_lost",
            self._clock(),
            plan_id=loss.plan_id,
            fencing_token=loss.fencing_token,
            reason=loss.reason,
            taken_by=loss.taken_by,
        )


__all__ = ["ClaimOperations"]
