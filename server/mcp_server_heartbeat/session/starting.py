"""The start of a session: write its record, adopting an earlier one of the same
id only by the rule of :func:`~mcp_server_heartbeat.domain.liveness.may_adopt`,
else continue under a new id; keep, report or re-fence the adopted record's claim.

Rules (design "Session identity" and invariant 7): two live processes never
share one id, one record or one claim; an adopted claim whose earlier client
may still run is handed on under a new fencing token.

:class:`SessionStarting` is mixed into :class:`~.service.SessionService`, whose
store, identity, clock, probe and in-memory record it uses.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain import lease
from ..domain.errors import StoreError
from ..domain.liveness import Observer, same_process_space
from ..domain.liveness import may_adopt as liveness_may_adopt
from ..domain.models import ClaimLost, ClaimRecord, SessionRecord
from .readers import continuation_id
from .records import Opener, Opening, open_record

if TYPE_CHECKING:
    from ..domain.clock import Clock
    from ..domain.models import EventKind
    from ..host.identity import Identity
    from ..host.probe import ProcessProbe
    from ..store import Store, Transaction

log = logging.getLogger(__name__)


class SessionStarting:
    """Start and adoption of one session (mixed into the service)."""

    if TYPE_CHECKING:  # the service's attributes and helpers these methods use
        identity: Identity
        store: Store
        interval: float
        continues: str | None
        _mutex: Any
        _clock: Clock
        _probe: ProcessProbe
        _record: SessionRecord | None
        _adopted: bool
        _started_mono: float | None
        _replaced: tuple[str | None, int | None] | None
        _unreported_loss: ClaimLost | None
        _monotonic: Callable[[], float]

        def _observer(self) -> Observer: ...
        def _beat(self, now: datetime) -> dict[str, Any]: ...
        def _log(self, tx: Transaction, kind: EventKind, now: datetime, **fields: Any) -> None: ...
        def _unit(self, timeout: float | None = None) -> AbstractContextManager[Transaction]: ...

    def start(self) -> SessionRecord:
        """Write this session's record, adopting an existing one with the same id
        when :func:`~.liveness.may_adopt` allows it.

        Adoption (resume, ``/mcp`` reconnect) keeps ``started_at``, role, tags,
        ``previous_session``, ``last_activity`` and a claim the ledger still
        grants to this id; the pid fields become this process's and an earlier
        ``ended_at`` is cleared. When the record's process may still run, this
        session runs under a new id instead (:meth:`_continue_under_new_id`):
        two live processes never share one id, one claim or one record.

        Raises:
            StoreError, StoreBusyError: the record could not be written.
        """
        with self._mutex, self._unit() as tx:
            now = self._clock()
            old = tx.read_session(self.identity.session_id)
            opening = self._open(old, now)
            if opening.continue_under_new_id:
                assert old is not None
                old = self._continue_under_new_id(tx, old)
                opening = self._open(old, now, may_adopt=lambda _old: True)
            record = opening.record
            assert record is not None
            if old is not None:
                record = self._adopt_claim(tx, record, old)
            self._record = record
            tx.write_session(record)
            self._adopted = old is not None
            self._replaced = None if old is None else (old.host, old.pid)
            self._started_mono = self._monotonic()
            self._log(
                tx,
                "session_adopted" if old is not None else "session_started",
                now,
                plan_id=record.plan_id,
                fencing_token=record.fencing_token,
                **({"previous_session": self.continues} if self.continues else {}),
            )
            return record

    def _open(
        self,
        old: SessionRecord | None,
        now: datetime,
        may_adopt: Callable[[SessionRecord], bool] | None = None,
    ) -> Opening:
        """This server's record over ``old`` (:func:`~.records.open_record`), by the
        adoption rule :func:`~.liveness.may_adopt` unless another is given."""
        rule = may_adopt or (
            lambda record: liveness_may_adopt(record, self._observer(), self._probe)
        )
        opener = Opener.of_identity(self.identity, self.interval, self.continues)
        beat = self._beat(now)
        return open_record(old, opener, now, rule, boottime=beat["last_heartbeat_boottime"])

    def _continue_under_new_id(self, tx: Transaction, live: SessionRecord) -> SessionRecord | None:
        """Switch this session to a new id because ``live``'s process may still run
        (inside the store's lock). The new id is the first of ``<id>-2``,
        ``<id>-3``, ... (the original shortened to stay a valid id) whose record
        is missing or may be adopted; that record, if any, is returned to adopt.
        Says so on stderr; ``continues`` and ``previous_session`` name the original.
        """
        original = live.session_id
        observer = self._observer()
        adopt: SessionRecord | None = None
        for n in range(2, 10_000):
            candidate = continuation_id(original, n)
            existing = tx.read_session(candidate)
            if existing is None or liveness_may_adopt(existing, observer, self._probe):
                adopt = existing
                break
        else:  # pragma: no cover - ten thousand live processes under one id
            raise StoreError(f"no free session id left after {original}-9999")
        where = f"pid {live.pid} on {live.host or 'an unknown host'}"
        log.warning(
            "session id %s is in use by a live or unprovable process (%s); "
            "this server runs as session %s, which continues it",
            original,
            where,
            candidate,
        )
        self.identity = dataclasses.replace(
            self.identity,
            session_id=candidate,
            session_id_source=f"{self.identity.session_id_source}; {original} was in use "
            f"by a process that may still run ({where}), so a new id continues it",
        )
        self.continues = original
        return adopt

    def _adopt_claim(
        self, tx: Transaction, record: SessionRecord, old: SessionRecord
    ) -> SessionRecord:
        """Keep the claim of an adopted record when the ledger still names this id.

        * A claim lost while the old process was gone (taken over, released) is
          reported: the adopted record's ``claim_lost`` and the next
          ``heartbeat`` say so, as they would have told the old process (a loss
          older than the old process's last heartbeat it may have heard of: it is
          kept in the record, not reported again).
        * When the old record's client (the MCP client that started the dead
          server) is not this server's client and may still run, the claim is
          kept under a new fencing token, so the token that client's agent may
          still hold is refused wherever tokens are checked: two live agents
          never work under one token.
        """
        if old.plan_id is None and (held := self._ledger_naming(record.session_id)) is not None:
            # The ledger names this id though its record shows no plan (the record write
            # after the grant failed, then the process died): the ledger is the truth.
            old = old.model_copy(
                update={"plan_id": held.plan_id, "fencing_token": held.fencing_token}
            )
        if old.plan_id is None:
            lost = old.claim_lost
            if lost is not None and (
                old.last_heartbeat is None
                or (lost.at is not None and lost.at >= old.last_heartbeat)
            ):
                self._unreported_loss = lost  # lost after the old process last beat
            return record.model_copy(update={"claim_lost": lost})
        ledger = tx.read_claim(old.plan_id)
        if ledger is None or ledger.holder != record.session_id:
            loss = lease.detect_loss(record.session_id, old, ledger)
            if loss is not None:
                self._unreported_loss = loss
            return record.model_copy(update={"claim_lost": loss or old.claim_lost})
        ident = self.identity
        now = self._clock()
        update: dict[str, Any] = {
            "holder_host": ident.host,
            "holder_pid": ident.pid,
            "holder_pid_started_at": ident.pid_started_at,
            "holder_pid_start_ticks": ident.pid_start_ticks,
            "holder_boot_id": ident.boot_id,
            "holder_pid_namespace": ident.pid_namespace,
        }
        refenced = self._client_may_run_elsewhere(old)
        if refenced:
            update.update(
                fencing_token=lease.next_token(ledger),
                claimed_at=now,
                acquired_by="takeover",
                takeover_reason="proof_of_death",
                previous_holder=record.session_id,
            )
        ledger = ledger.model_copy(update=update)
        tx.write_claim(ledger)
        if refenced:
            self._log(
                tx,
                "claim_taken_over",
                now,
                plan_id=ledger.plan_id,
                fencing_token=ledger.fencing_token,
                reason="proof_of_death",
                previous_holder=record.session_id,
                force=False,
            )
        return record.model_copy(
            update={
                "plan_id": ledger.plan_id,
                "fencing_token": ledger.fencing_token,
                "claimed_at": ledger.claimed_at,
            }
        )

    def _ledger_naming(self, session_id: str) -> ClaimRecord | None:
        """The claim ledger that names ``session_id`` as holder, if any (a session
        holds at most one plan)."""
        return next((c for c in self.store.iter_claims() if c.holder == session_id), None)

    def _client_may_run_elsewhere(self, old: SessionRecord) -> bool:
        """True when ``old``'s MCP client is not this server's and is not proven
        gone (another process space counts as may-run: fail safe, a new token
        costs nothing)."""
        client = old.client_pid
        if client is None or client <= 0:
            return False
        if client == self.identity.client_pid and same_process_space(old, self._observer()):
            return False
        if not same_process_space(old, self._observer()):
            return True
        return not self._probe(client, None).dead


__all__ = ["SessionStarting"]
