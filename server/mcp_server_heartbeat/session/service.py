"""One session's per-process state and its operations: start, heartbeat, claim,
release, list, end.

No MCP here: the MCP layer calls these and turns their results into tool
results. Every change is one store transaction (a unit of work that commits
all or nothing, exclusive across every process sharing the store), so the
rules hold across any number of server processes. The rules live apart:

* the lease rules (one live claim per plan, fencing tokens that grow forever,
  a live holder never displaced, takeover on proof of death) and the messages
  the agent reads: :mod:`~mcp_server_heartbeat.domain.lease`; their reads and
  writes: :mod:`.claims`. A holder learns of its loss: every write of its own
  record first checks the ledger; a loss is reported once by the next
  ``heartbeat`` and shown in the record's ``claim_lost``.
* opening or adopting a record (one live process per session id):
  :mod:`.records` and :mod:`.starting`. A server started under the id of a
  record whose process may still run runs under a new id ``<id>-2``,
  ``<id>-3``, ... with ``previous_session`` = the original.
* waiting for a plan (``wait_for_plan``: the queue, first come, first served):
  :mod:`.waiting` (attempts) and :mod:`.wait_loop` (wake-ups, cancellation).
* the end of a session: :mod:`.ending` (and :mod:`.handover` for a server
  that is gone); reading sessions with liveness: :mod:`.readers`.

Kept here: who this session is, its record in memory, the mutex, its own age
on a monotonic clock, and a loss not yet reported. Within one process the
mutex serialises the worker threads of tool calls and the background
heartbeat; it is always taken before a store transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..domain import lease
from ..domain.clock import BootClock, Clock, boottime_now, utc_now
from ..domain.errors import InvalidInputError
from ..domain.liveness import Observer, Thresholds
from ..domain.models import (
    ClaimLost,
    Event,
    EventKind,
    HeartbeatResult,
    ListResult,
    SessionRecord,
    SessionView,
    Tags,
)
from ..domain.tags import parse_tags
from ..domain.validation import validate_label
from ..host.identity import Identity, read_boot_id
from ..host.probe import ProcessProbe, probe_process
from ..store import Store, Transaction
from . import readers
from .claims import ClaimOperations
from .ending import CLEAN_END_REASONS, DISCARD_WITHIN_S, SessionEnding
from .readers import STATUSES
from .starting import SessionStarting
from .waiting import WaitOperations

if TYPE_CHECKING:
    from .observe import PlanReport

log = logging.getLogger(__name__)

ROLES = ("creator", "executor", "reviewer", "releaser")

_UNDONE_ON_ROLLBACK = (
    "_record_value",
    "_beat_anchor",
    "_unreported_loss",
    "_ended",
    "_adopted",
    "_started_mono",
    "_replaced",
    "identity",
    "continues",
)
"""The per-process state a failed transaction restores (:meth:`SessionService._unit`)."""


class SessionService(SessionStarting, ClaimOperations, WaitOperations, SessionEnding):
    """This session's operations against a :class:`~.store.Store`.

    Args:
        store: where records and claims live.
        identity: who this session is (read once at start).
        thresholds: stale and idle limits in seconds.
        interval: the background heartbeat's period in seconds (recorded as
            ``heartbeat_interval_s`` for readers).
        clock: returns aware UTC now, for judgments and timestamps; default:
            the store's clock (:meth:`~.Store.now`). Injected by tests.
        probe: proves processes dead; injected by tests.
        tag_kinds: the accepted ``tags.kind`` values, or None for any
            kebab-case kind (``session_tracking.tags.kinds``).
        monotonic: seconds of a monotonic clock for this session's own age.
        boottime: seconds of ``CLOCK_BOOTTIME``, recorded with every heartbeat
            (``last_heartbeat_boottime``) and used for ages on this boot. Default:
            the system's when ``clock`` is the system clock; with an injected
            wall clock and none given, none is recorded and ages are by UTC.
    """

    def __init__(
        self,
        store: Store,
        identity: Identity,
        thresholds: Thresholds,
        interval: float,
        clock: Clock | None = None,
        probe: ProcessProbe = probe_process,
        tag_kinds: Collection[str] | None = None,
        monotonic: Callable[[], float] | None = None,
        boottime: BootClock | None = None,
    ) -> None:
        self.store = store
        self.tag_kinds = tag_kinds
        self.identity = identity
        self.thresholds = thresholds
        self.interval = interval
        # Liveness is judged with the store's clock unless one is injected.
        self._clock: Clock = clock if clock is not None else store.now
        system = clock is None or clock is utc_now
        self._probe = probe
        self._mutex = threading.RLock()
        # This session's own age comes from a monotonic clock (immune to wall-clock
        # steps); with an injected wall clock and no monotonic one, tests move both.
        self._monotonic = monotonic or (
            time.monotonic if system else (lambda: self._clock().timestamp())
        )
        self._boottime = boottime or (boottime_now if system else None)
        self.continues: str | None = None
        """The id this server was started with when a live process held it (it then
        runs under a new id that continues it); None otherwise."""
        self._beat_anchor: tuple[datetime, float] | None = None
        self._record_value: SessionRecord | None = None
        self._unreported_loss: ClaimLost | None = None
        self._ended = False
        self._agent_called = False
        self._adopted = False
        self._started_mono: float | None = None
        self._replaced: tuple[str | None, int | None] | None = None
        """(host, pid) of the dead process whose record this one adopted: a record
        still naming it is this process's own (its rewrite failed), not a successor."""
        self._superseded_by: tuple[int | None, str | None] | None = None
        """(pid, host) of the process that adopted this session's record, if one did."""

    @classmethod
    def for_record(
        cls,
        store: Store,
        record: SessionRecord,
        clock: Clock | None = None,
        probe: ProcessProbe = probe_process,
    ) -> SessionService:
        """A service acting for a session recorded by another process (its identity
        is read from ``record``), without :meth:`start`: e.g. to :meth:`end` it on
        behalf of a server that is gone."""
        identity = Identity(
            session_id=record.session_id,
            session_id_source="record",
            entrypoint=record.entrypoint,
            agent_version=record.agent_version,
            branch=record.branch,
            cwd=record.cwd or "",
            host=record.host or "",
            pid=record.pid or 0,
            pid_started_at=record.pid_started_at,
            pid_start_ticks=record.pid_start_ticks,
            client_pid=record.client_pid or 0,
            worktree=record.worktree,
            boot_id=record.boot_id,
            pid_namespace=record.pid_namespace,
            time_namespace=record.time_namespace,
        )
        service = cls(
            store,
            identity,
            Thresholds(),
            interval=record.heartbeat_interval_s or 0.0,
            clock=clock,
            probe=probe,
        )
        service._record = record
        return service

    @property
    def record(self) -> SessionRecord:
        """This session's record as last written (or about to be)."""
        return self._current()

    # -- lifecycle ----------------------------------------------------------------

    @property
    def session_id(self) -> str:
        """This session's id."""
        return self.identity.session_id

    @property
    def ended(self) -> bool:
        """True once :meth:`end` has run."""
        return self._ended

    @property
    def _record(self) -> SessionRecord | None:
        return self._record_value

    @_record.setter
    def _record(self, record: SessionRecord | None) -> None:
        # Anchor the heartbeat on the monotonic clock whenever it moves (each write).
        old = self._record_value
        if (
            record is not None
            and record.last_heartbeat is not None
            and (old is None or old.last_heartbeat != record.last_heartbeat)
        ):
            self._beat_anchor = (record.last_heartbeat, self._monotonic())
        self._record_value = record

    def _self_now(self) -> datetime:
        """The "now" of this session's own view: its last heartbeat plus the monotonic
        time since, so its age neither goes negative nor jumps when the wall clock is
        stepped (fault suite: clocks). Other sessions' ages use the boot-time clock
        on this boot, else the wall clock (``liveness.heartbeat_age``)."""
        anchor = self._beat_anchor
        if anchor is None:
            return self._clock()
        return anchor[0] + timedelta(seconds=max(0.0, self._monotonic() - anchor[1]))

    def _beat(self, now: datetime) -> dict[str, Any]:
        """The fields of a heartbeat at ``now``: UTC and, when known, boot time."""
        boottime = None
        # Only a reading of the boot the record names is comparable (for_record
        # may act for a record of another boot).
        if self._boottime is not None and self.identity.boot_id == read_boot_id():
            boottime = self._boottime()
        return {"last_heartbeat": now, "last_heartbeat_boottime": boottime}

    @contextmanager
    def _unit(self, timeout: float | None = None) -> Iterator[Transaction]:
        """A store transaction whose effect on this session's in-memory state is
        undone with it: when the block raises or the commit point fails, the
        record, claim loss and id are what they were before (nothing was written)."""
        saved = {name: getattr(self, name) for name in _UNDONE_ON_ROLLBACK}
        try:
            with self.store.transaction(timeout) as tx:
                yield tx
        except BaseException:
            for name, value in saved.items():
                setattr(self, name, value)
            raise

    def note_client(self, name: str | None, version: str | None) -> None:
        """Fill ``entrypoint``/``agent_version`` from the MCP ``clientInfo`` when the
        environment did not; kept in memory and written with the next heartbeat."""
        with self._mutex:
            record = self._current()
            update: dict[str, Any] = {}
            if name and record.entrypoint is None:
                update["entrypoint"] = name
            if name and record.agent_version is None:
                update["agent_version"] = f"{name}/{version}" if version else name
            if update:
                self._record = record.model_copy(update=update)

    # -- heartbeat ----------------------------------------------------------------

    def heartbeat(
        self,
        activity: str | None = None,
        role: str | None = None,
        tags: Mapping[str, Any] | Tags | list[Any] | str | None = None,
    ) -> HeartbeatResult:
        """The ``heartbeat`` tool: refresh the record, optionally set the activity
        label, role and tags, and report a claim loss not yet reported.

        Raises:
            InvalidInputError: activity over 200 characters or with control
                characters; a role outside creator | executor | reviewer |
                releaser; tags that are not ``{kind?, topics[0..2]}``.
            StoreError, StoreBusyError: the record could not be written.
        """
        update: dict[str, Any] = {}
        if activity is not None:
            update["last_activity"] = validate_label(activity, "activity")
        if role is not None:
            if role not in ROLES:
                raise InvalidInputError(
                    f"role {role!r} is not accepted: use one of {', '.join(ROLES)}"
                )
            update["role"] = role
        if tags is not None:
            update["tags"] = parse_tags(tags, self.tag_kinds)
        with self._mutex:
            self._agent_called = True
            if not self._write_own(agent_call=True, update=update):
                raise self.superseded_error()
            loss, self._unreported_loss = self._unreported_loss, None
            return HeartbeatResult(session=self.view_self(), claim_lost=loss)

    def beat(self) -> None:
        """One background heartbeat: check the claim, refresh ``last_heartbeat``.

        Raises:
            StoreError, StoreBusyError: counted by the background loop.
        """
        with self._mutex:
            if not self._ended:
                self._write_own(agent_call=False)

    def touch(self) -> None:
        """Note an agent tool call that writes nothing (list, info): it is saved
        with the next heartbeat, so reading the directory never modifies it."""
        with self._mutex:
            self._agent_called = True
            self._record = self._current().model_copy(update={"last_call_at": self._clock()})

    def _write_own(self, agent_call: bool, update: Mapping[str, Any] | None = None) -> bool:
        """Refresh this session's record; False (nothing written) when another process
        has adopted it (:meth:`~.ending.SessionEnding._superseded`)."""
        with self._unit() as tx:
            if self._superseded(tx):
                return False
            now = self._clock()
            self._sync_claim(tx)
            changes: dict[str, Any] = {**self._beat(now), **(update or {})}
            if agent_call:
                changes["last_call_at"] = now
            record = self._current().model_copy(update=changes)
            tx.write_session(record)
            self._record = record
        return True

    def _log(self, tx: Transaction, kind: EventKind, now: datetime, **fields: Any) -> None:
        """Append an event for a change made in ``tx``; it is written at commit,
        after the change (the store logs, and does not raise, a failure to write it:
        the change itself is the truth)."""
        ident = self.identity
        tx.append_event(
            Event(
                at=now,
                event=kind,
                session_id=self.session_id,
                host=ident.host,
                pid=ident.pid,
                **fields,
            )
        )

    # -- reading ------------------------------------------------------------------

    def list_sessions(
        self,
        status: str | None = None,
        plan_id: str | None = None,
        branch: str | None = None,
        include_ended: bool = False,
    ) -> ListResult:
        """The ``list_sessions`` tool: every session with computed liveness.

        Filters combine with AND; ended sessions are left out unless
        ``include_ended`` is true or ``status="ended"``. Reads only.

        Raises:
            InvalidInputError: an unknown status or a bad branch.
            StoreError: the directory cannot be listed.
        """
        readers.check_filters(status, plan_id, branch)
        records, unreadable = self.store.list_sessions()
        now = self._clock()
        views = readers.sessions_with_liveness(
            records,
            now,
            self._observer(),
            self._probe,
            self.thresholds,
            own=self._committed_record(),
            status=status,
            plan_id=plan_id,
            branch=branch,
            include_ended=include_ended,
        )
        return ListResult(sessions=views, unreadable=unreadable)

    def plan_report(self, plan_id: str) -> PlanReport:
        """The plan's holder, fencing token, transition count and recent events,
        with the holder's status as this session sees it (the resource
        ``heartbeat://plans/{plan_id}``). Reads only.

        Raises:
            InvalidInputError: ``plan_id`` is not a valid id.
            StoreError: its ledger is unreadable.
        """
        from .observe import plan_report  # imported when asked, not at every server start

        views = {view.session_id: view for view in self.list_sessions(include_ended=True).sessions}

        def status_of(record: SessionRecord) -> str:
            view = views.get(record.session_id)
            return "stale" if view is None else view.status

        return plan_report(self.store, plan_id, status_of)

    def view_self(self) -> SessionView:
        """This session's view, from memory (what the last committed write stored).
        Taken under the session's mutex: a transaction in flight in another thread
        (a claim whose commit may still fail) is never shown."""
        with self._mutex:
            record = self._current()
            return readers.view(
                record, self._self_now(), self._observer(), self._probe, self.thresholds
            )

    @property
    def claim_lost(self) -> ClaimLost | None:
        """The last claim loss recorded for this session, if any."""
        with self._mutex:
            return self._current().claim_lost

    # -- helpers ------------------------------------------------------------------

    def _committed_record(self) -> SessionRecord | None:
        """This session's record once no transaction of this process is in flight."""
        with self._mutex:
            return self._record

    def _current(self) -> SessionRecord:
        if self._record is None:
            raise RuntimeError("SessionService.start() has not run")
        return self._record

    def _observer(self) -> Observer:
        record = self._record
        ident = self.identity
        return Observer(
            session_id=self.session_id,
            host=ident.host,
            client_pid=ident.client_pid,
            previous_session=record.previous_session if record else None,
            boot_id=ident.boot_id,
            pid_namespace=ident.pid_namespace,
            time_namespace=ident.time_namespace,
            boottime=self._boottime,
        )

    _without_claim = staticmethod(lease.without_claim)


__all__ = [
    "CLEAN_END_REASONS",
    "DISCARD_WITHIN_S",
    "ROLES",
    "STATUSES",
    "SessionService",
]
