"""The ending of sessions: a clean end (claim released, ``ended_at`` and
``end_reason`` set), the discard of a record nobody needs, and ending a record
on behalf of a server that is gone (the SessionEnd hook:
:func:`~.handover.end_session_record`).

Rules (design "Lifecycle" and invariant 7):

* **A clean end releases the claim** in the ledger (only if the ledger still
  names this session) and marks the record ended, inside the store's transaction.
* **A superseded process writes nothing.** When the record of its id now
  belongs to another process (which adopted it after proof of this one's
  death), ending here would end another live process's record.
* **A health check leaves no record.** A session that ends cleanly within
  :data:`DISCARD_WITHIN_S` of its start, without an agent tool call, never
  adopted, holding no plan, has its record removed instead.

:class:`SessionEnding` holds these operations of
:class:`~.service.SessionService` (which inherits them), so they read and write
through the same ``self.store`` and per-process state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.clock import Clock
from ..domain.errors import StoreBusyError, StoreError
from ..domain.models import SessionRecord
from ..store import Store, Transaction

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ..domain.models import EventKind
    from ..host.identity import Identity

log = logging.getLogger(__name__)

DISCARD_WITHIN_S = 10.0
"""A session that ends cleanly within this many seconds of its start, without a
single agent tool call, never adopted from an earlier record, leaves no record:
``claude mcp list``/``get`` and Inspector health checks start a server each
(issue "Fault round two", 9). Its events stay in the log (the audit trail)."""

SUPERSEDED_MESSAGE = (
    "this session's record ({session_id}) now belongs to another process (pid {pid} on "
    "{host}), which adopted it after this server was judged dead; nothing was changed. "
    "This server no longer records the session: reconnect (/mcp) to start a new one."
)
"""The error a superseded server answers every write with (design invariant 7)."""

CLEAN_END_REASONS = frozenset({"disconnect", "sigterm", "sigint", "sighup"})
"""End reasons of a clean end: stdin closed, or a signal received."""


class SessionEnding:
    """The end of one session (mixed into :class:`~.service.SessionService`).

    Uses the service's store, identity, mutex, clock and in-memory record;
    the attributes below are the service's.
    """

    if TYPE_CHECKING:  # the service's attributes and helpers these methods use
        store: Store
        identity: Identity
        _mutex: threading.RLock
        _ended: bool
        _agent_called: bool
        _adopted: bool
        _started_mono: float | None
        _clock: Clock
        _monotonic: Callable[[], float]
        _record: SessionRecord | None
        _superseded_by: tuple[int | None, str | None] | None
        _replaced: tuple[str | None, int | None] | None

        @property
        def session_id(self) -> str: ...
        def _current(self) -> SessionRecord: ...
        def _sync_claim(self, tx: Transaction) -> None: ...
        def _release_ledger(
            self, tx: Transaction, record: SessionRecord, now: datetime, reason: str
        ) -> bool: ...
        @staticmethod
        def _without_claim(record: SessionRecord) -> SessionRecord: ...
        def _beat(self, now: datetime) -> dict[str, Any]: ...
        def _log(self, tx: Transaction, kind: EventKind, now: datetime, **fields: Any) -> None: ...
        def _unit(self, timeout: float | None = None) -> AbstractContextManager[Transaction]: ...

    def end(self, reason: str, lock_timeout: float | None = None) -> None:
        """End this session cleanly: release its claim, set ``ended_at`` and
        ``end_reason``. Idempotent; later calls do nothing.

        ``lock_timeout`` bounds the wait for the store's lock (seconds), so a
        shutdown stays inside the client's grace period.

        Raises:
            StoreError, StoreBusyError: the record could not be written (the
                caller logs it; a dead process is still proven dead later).
        """
        if not self._mutex.acquire(timeout=-1 if lock_timeout is None else lock_timeout):
            raise StoreBusyError("another operation of this session did not finish in time")
        try:
            if self._ended or self._record is None:
                return
            with self._unit(lock_timeout) as tx:
                self.end_within(tx, reason)
        finally:
            self._mutex.release()

    def end_within(self, tx: Transaction, reason: str) -> None:
        """End this session inside ``tx``, the unit of work of :meth:`end` or of
        :func:`end_session_record` (which judged the record in the same one):
        release its claim in the ledger, set ``ended_at``/``end_reason``, or
        discard a record not worth keeping. Does nothing once ended. The writes
        commit with ``tx``."""
        if self._ended or self._record is None:
            return
        now = self._clock()
        if self._superseded(tx):
            return
        if self._discard(tx, reason, now):
            return
        self._sync_claim(tx)
        record = self._current()
        released: SessionRecord | None = None
        if record.plan_id is not None:
            if self._release_ledger(tx, record, now, f"session ended: {reason}"):
                released = record
            record = self._without_claim(record)
        record = record.model_copy(
            update={**self._beat(now), "ended_at": now, "end_reason": reason}
        )
        tx.write_session(record)
        self._record = record
        if released is not None:
            self._log(
                tx,
                "claim_released",
                now,
                plan_id=released.plan_id,
                fencing_token=released.fencing_token,
                reason=f"session ended: {reason}",
            )
        self._log(tx, "session_ended", now, reason=reason)
        self._ended = True

    def _superseded(self, tx: Transaction) -> bool:
        """True (and this session is over) when the record of this id on disk now
        belongs to another process, which adopted it after proof of this one's
        death (a wrong proof, or a process resumed from a stop): writing it here
        would overwrite, end or release another live process's record and claim
        (design invariant 7), so nothing is written. Every write checks it first:
        the heartbeat, claim, release and end. The reason is kept for
        :meth:`superseded_error`."""
        disk = tx.read_session(self.session_id)
        ident = self.identity
        if disk is None or (disk.host, disk.pid) == (ident.host, ident.pid):
            return False
        if self._replaced == (disk.host, disk.pid):
            # The record of the dead process this one adopted: this process's rewrite
            # of it failed after the commit point (disk full); its next write repairs it.
            return False
        self._superseded_by = (disk.pid, disk.host)
        log.warning(
            "session %s was adopted by pid %s on %s; this process (pid %s) ends without "
            "touching its record or claim",
            self.session_id,
            disk.pid,
            disk.host,
            ident.pid,
        )
        self._ended = True
        return True

    def superseded_error(self) -> StoreError:
        """The error for a write refused because this session was superseded."""
        pid, host = self._superseded_by or (None, None)
        return StoreError(
            SUPERSEDED_MESSAGE.format(session_id=self.session_id, pid=pid, host=host or "?")
        )

    def _discard(self, tx: Transaction, reason: str, now: datetime) -> bool:
        """Remove this session's record instead of ending it, when nothing in it is
        worth reading (inside the store's transaction; see :data:`DISCARD_WITHIN_S`).

        Only a record that is still this process's own (same host, pid and
        process start, not adopted since) is removed: one another process
        adopted in the meantime is left to the normal end. The event
        ``session_ended`` is appended with ``discarded: true``.

        Returns:
            True when the record was removed and the session is over.
        """
        lived = None if self._started_mono is None else self._monotonic() - self._started_mono
        record = self._current()
        if (
            reason not in CLEAN_END_REASONS
            or self._agent_called
            or self._adopted
            or lived is None
            or lived >= DISCARD_WITHIN_S
            or record.plan_id is not None
        ):
            return False
        disk = tx.read_session(self.session_id)
        ident = self.identity
        if disk is None or (disk.host, disk.pid, disk.pid_started_at, disk.adopted_at) != (
            ident.host,
            ident.pid,
            ident.pid_started_at,
            None,
        ):
            return False
        tx.delete_session(self.session_id)
        self._record = record.model_copy(
            update={"last_heartbeat": now, "ended_at": now, "end_reason": reason}
        )
        self._log(tx, "session_ended", now, reason=reason, discarded=True)
        self._ended = True
        return True


__all__ = ["CLEAN_END_REASONS", "DISCARD_WITHIN_S", "SUPERSEDED_MESSAGE", "SessionEnding"]
