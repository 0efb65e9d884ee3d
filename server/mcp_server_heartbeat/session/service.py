"""The operations on one session: start, heartbeat, claim, release, list, end.

No MCP here: the MCP layer (``app``) calls these and turns their results into
tool results. Every change happens inside the store's cross-process lock, so
the rules below hold across any number of server processes:

* **One live claim per plan.** The plan's claim ledger (``ClaimRecord``) names
  its holder; only the lock holder may change it.
* **Fencing tokens grow forever.** A claim gets ``ledger.fencing_token + 1``;
  the ledger keeps the last token after release, so tokens never go back.
* **A live holder with a fresh heartbeat is never displaced**, ``force`` or
  not. A holder proven dead (same host, boot and PID namespace as the
  claimant, process gone or PID reused) loses the plan to the next claimant
  automatically; a stale holder not proven dead loses
  it only to ``force=true``. This is the lease rule of Chubby/ZooKeeper-style
  systems with the lock-file rule (PostgreSQL, QLockFile) for proof of death.
* **One live process per session id.** A server started under the id of a
  record whose process may still run (alive, or not provably dead: another
  host, boot or PID namespace) runs under a new id ``<id>-2``, ``<id>-3``, ...
  with ``previous_session`` = the original; it adopts only a record that ended,
  names no process, is proven dead, or was written for its own client by the
  SessionStart hook (:func:`~.liveness.may_adopt`).
* **A holder learns of its loss.** Every write of its own record first checks
  the ledger; a loss is reported once by the next ``heartbeat`` and is shown in
  the record's ``claim_lost``.

Within one process, a mutex serialises the worker threads of tool calls and the
background heartbeat; it is always taken before the store's lock.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.clock import BootClock, Clock, boottime_now, utc_now
from ..domain.errors import InvalidInputError, StoreBusyError, StoreError
from ..domain.liveness import Observer, Thresholds, assess, may_adopt, view_of
from ..domain.models import (
    ClaimLost,
    ClaimRecord,
    ClaimResult,
    HeartbeatResult,
    ListResult,
    ReleaseResult,
    SessionRecord,
    SessionView,
    Status,
    Tags,
    TakeoverReason,
)
from ..domain.tags import parse_tags
from ..domain.validation import (
    validate_label,
)
from ..host.identity import Identity, read_boot_id
from ..host.probe import ProcessProbe, probe_process
from ..store import Store
from ..store.directory.events import Event, EventKind

log = logging.getLogger(__name__)

ID_MAX_CHARS = 128
"""The longest valid id (``validation.ID_PATTERN``); a new id ``<id>-<n>`` stays inside it."""
ROLES = ("creator", "executor", "reviewer", "releaser")

DISCARD_WITHIN_S = 10.0
"""A session that ends cleanly within this many seconds of its start, without a
single agent tool call, never adopted from an earlier record, leaves no record:
``claude mcp list``/``get`` and Inspector health checks start a server each
(issue "Fault round two", 9). Its events stay in the log (the audit trail)."""

CLEAN_END_REASONS = frozenset({"disconnect", "sigterm", "sigint", "sighup"})
"""End reasons of a clean end: stdin closed, or a signal received."""
STATUSES: tuple[Status, ...] = ("active", "idle", "stale", "dead", "ended")


@dataclass(frozen=True)
class _Holder:
    """The current holder of a plan as this session sees it."""

    record: SessionRecord
    view: SessionView
    on_disk: bool


class SessionService:
    """This session's operations against a :class:`~.store.Store`.

    Args:
        store: where records and claims live.
        identity: who this session is (read once at start).
        thresholds: stale and idle limits in seconds.
        interval: the background heartbeat's period in seconds (recorded as
            ``heartbeat_interval_s`` for readers).
        clock: returns aware UTC now; injected by tests.
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
        clock: Clock = utc_now,
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
        self._clock = clock
        self._probe = probe
        self._mutex = threading.RLock()
        # This session's own age comes from a monotonic clock (immune to wall-clock
        # steps); with an injected wall clock and no monotonic one, tests move both.
        self._monotonic = monotonic or (
            time.monotonic if clock is utc_now else (lambda: clock().timestamp())
        )
        self._boottime = boottime or (boottime_now if clock is utc_now else None)
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

    @classmethod
    def for_record(
        cls,
        store: Store,
        record: SessionRecord,
        clock: Clock = utc_now,
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
        with self._mutex, self.store.lock():
            now = self._clock()
            old = self.store.read_session(self.identity.session_id)
            if old is not None and not may_adopt(old, self._observer(), self._probe):
                old = self._continue_under_new_id(old)
            ident = self.identity
            record = SessionRecord(
                session_id=ident.session_id,
                entrypoint=ident.entrypoint,
                agent_version=ident.agent_version,
                branch=ident.branch,
                cwd=ident.cwd,
                worktree=ident.worktree,
                started_at=now,
                last_call_at=now,
                host=ident.host,
                pid=ident.pid,
                pid_started_at=ident.pid_started_at,
                client_pid=ident.client_pid,
                heartbeat_interval_s=self.interval,
                boot_id=ident.boot_id,
                pid_namespace=ident.pid_namespace,
                time_namespace=ident.time_namespace,
                previous_session=self.continues,
                **self._beat(now),
            )
            if old is not None:
                record = record.model_copy(
                    update={
                        "started_at": old.started_at or now,
                        "entrypoint": ident.entrypoint or old.entrypoint,
                        "agent_version": ident.agent_version or old.agent_version,
                        "role": old.role,
                        "tags": old.tags,
                        "previous_session": self.continues or old.previous_session,
                        "last_activity": old.last_activity,
                        "adopted_at": now,
                    }
                )
                record = self._adopt_claim(record, old)
            self._record = record
            self.store.write_session(record)
            self._adopted = old is not None
            self._started_mono = self._monotonic()
            self._log(
                "session_adopted" if old is not None else "session_started",
                now,
                plan_id=record.plan_id,
                fencing_token=record.fencing_token,
                **({"previous_session": self.continues} if self.continues else {}),
            )
            return record

    def _continue_under_new_id(self, live: SessionRecord) -> SessionRecord | None:
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
            suffix = f"-{n}"
            candidate = original[: ID_MAX_CHARS - len(suffix)] + suffix
            existing = self.store.read_session(candidate)
            if existing is None or may_adopt(existing, observer, self._probe):
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

    def _adopt_claim(self, record: SessionRecord, old: SessionRecord) -> SessionRecord:
        """Keep the claim of an adopted record when the ledger still names this id."""
        if old.plan_id is None:
            return record
        ledger = self.store.read_claim(old.plan_id)
        if ledger is None or ledger.holder != record.session_id:
            return record
        ident = self.identity
        self.store.write_claim(
            ledger.model_copy(
                update={
                    "holder_host": ident.host,
                    "holder_pid": ident.pid,
                    "holder_pid_started_at": ident.pid_started_at,
                    "holder_boot_id": ident.boot_id,
                    "holder_pid_namespace": ident.pid_namespace,
                }
            )
        )
        return record.model_copy(
            update={
                "plan_id": ledger.plan_id,
                "fencing_token": ledger.fencing_token,
                "claimed_at": ledger.claimed_at,
            }
        )

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
            with self.store.lock(lock_timeout):
                now = self._clock()
                if self._superseded():
                    return
                if self._discard(reason, now):
                    return
                self._sync_claim()
                record = self._current()
                released: SessionRecord | None = None
                if record.plan_id is not None:
                    if self._release_ledger(record, now, f"session ended: {reason}"):
                        released = record
                    record = self._without_claim(record)
                record = record.model_copy(
                    update={**self._beat(now), "ended_at": now, "end_reason": reason}
                )
                self.store.write_session(record)
                self._record = record
                if released is not None:
                    self._log(
                        "claim_released",
                        now,
                        plan_id=released.plan_id,
                        fencing_token=released.fencing_token,
                        reason=f"session ended: {reason}",
                    )
                self._log("session_ended", now, reason=reason)
                self._ended = True
        finally:
            self._mutex.release()

    def _superseded(self) -> bool:
        """True (and this session is over) when the record of this id on disk now
        belongs to another process, which adopted it after proof of this one's
        death (a wrong proof, or a process resumed from a stop): ending it here
        would end another live process's record and release its claim (design
        invariant 7), so nothing is written."""
        disk = self.store.read_session(self.session_id)
        ident = self.identity
        if disk is None or (disk.host, disk.pid) == (ident.host, ident.pid):
            return False
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

    def _discard(self, reason: str, now: datetime) -> bool:
        """Remove this session's record instead of ending it, when nothing in it is
        worth reading (inside the store's lock; see :data:`DISCARD_WITHIN_S`).

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
        disk = self.store.read_session(self.session_id)
        ident = self.identity
        if disk is None or (disk.host, disk.pid, disk.pid_started_at, disk.adopted_at) != (
            ident.host,
            ident.pid,
            ident.pid_started_at,
            None,
        ):
            return False
        self.store.delete_session(self.session_id)
        self._record = record.model_copy(
            update={"last_heartbeat": now, "ended_at": now, "end_reason": reason}
        )
        self._log("session_ended", now, reason=reason, discarded=True)
        self._ended = True
        return True

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
            self._write_own(agent_call=True, update=update)
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

    def _write_own(self, agent_call: bool, update: Mapping[str, Any] | None = None) -> None:
        with self.store.lock():
            now = self._clock()
            self._sync_claim()
            changes: dict[str, Any] = {**self._beat(now), **(update or {})}
            if agent_call:
                changes["last_call_at"] = now
            record = self._current().model_copy(update=changes)
            self.store.write_session(record)
            self._record = record

    # -- claims -------------------------------------------------------------------

    def claim(self, plan_id: str, force: bool = False) -> ClaimResult:
        """The ``claim_plan`` tool. Outcomes (design contract):

        * ``claimed`` — the plan was free; a new fencing token.
        * ``already_yours`` — you hold it; same token (idempotent).
        * ``holding_other`` — you hold another plan; release it first.
        * ``held_by_other`` — a live holder (fresh heartbeat), or a stale one
          without ``force``; ``holder`` is its view.
        * ``taken_over`` — the holder was proven dead (automatic), had ended
          without releasing, or was stale and ``force`` was set.

        Raises:
            InvalidInputError: ``plan_id`` is not a valid id.
            StoreError, StoreBusyError: nothing was changed.
        """
        self._agent_called = True
        with self._mutex:
            answer = self._claim_locked(plan_id, force)
            return answer()  # the result and its message are built outside the lock

    def _claim_locked(self, plan_id: str, force: bool) -> Callable[[], ClaimResult]:
        """Decide and write a claim inside the store's lock (under the mutex);
        returns how to build the result, which happens after the lock is left."""
        with self.store.lock():
            now = self._clock()
            self._sync_claim()
            record = self._current()
            if record.plan_id == plan_id:
                return lambda: self._result(
                    "already_yours",
                    plan_id,
                    record.fencing_token,
                    f"You already hold plan {plan_id} with fencing token "
                    f"{record.fencing_token}; carry on.",
                )
            if record.plan_id is not None:
                return lambda: ClaimResult(
                    outcome="holding_other",
                    claimed=False,
                    plan_id=plan_id,
                    fencing_token=None,
                    holder=None,
                    previous_session=None,
                    held_plan=record.plan_id,
                    message=f"You hold plan {record.plan_id}. A session holds one plan at a "
                    f"time: release {record.plan_id} first, then claim {plan_id}.",
                )
            ledger = self.store.read_claim(plan_id)
            if ledger is None or ledger.holder is None:
                token = self._grant(plan_id, ledger, now)
                return lambda: self._result(
                    "claimed",
                    plan_id,
                    token,
                    f"Plan {plan_id} is yours, fencing token {token}. Heartbeat while you work "
                    "and release it when done.",
                )
            if ledger.holder == self.session_id:
                self._record = record.model_copy(
                    update={
                        "plan_id": plan_id,
                        "fencing_token": ledger.fencing_token,
                        "claimed_at": ledger.claimed_at,
                    }
                )
                self.store.write_session(self._record)
                return lambda: self._result(
                    "already_yours",
                    plan_id,
                    ledger.fencing_token,
                    f"You already hold plan {plan_id} with fencing token "
                    f"{ledger.fencing_token}; carry on.",
                )
            holder = self._holder(ledger, now)
            reason = _takeover_reason(holder, force)
            if reason is None:
                return lambda: ClaimResult(
                    outcome="held_by_other",
                    claimed=False,
                    plan_id=plan_id,
                    fencing_token=None,
                    holder=holder.view,
                    previous_session=None,
                    message=_refusal(plan_id, holder.view),
                )
            token = self._grant(plan_id, ledger, now, takeover=(holder, reason))
            return lambda: ClaimResult(
                outcome="taken_over",
                claimed=True,
                plan_id=plan_id,
                fencing_token=token,
                holder=None,
                previous_session=holder.record.session_id,
                takeover_reason=reason,
                message=f"Took plan {plan_id} over from session {holder.record.session_id} "
                f"({_REASON_TEXT[reason]}); your fencing token is {token}. Check the state "
                "it left (uncommitted work, branches) before going on.",
            )

    def _holder(self, ledger: ClaimRecord, now: datetime) -> _Holder:
        assert ledger.holder is not None
        record = self.store.read_session(ledger.holder)
        on_disk = record is not None
        if record is None:
            # No readable record: judge the holder by the pid the ledger recorded.
            record = SessionRecord(
                session_id=ledger.holder,
                plan_id=ledger.plan_id,
                fencing_token=ledger.fencing_token,
                claimed_at=ledger.claimed_at,
                host=ledger.holder_host,
                pid=ledger.holder_pid,
                pid_started_at=ledger.holder_pid_started_at,
                boot_id=ledger.holder_boot_id,
                pid_namespace=ledger.holder_pid_namespace,
            )
        view = view_of(record, assess(record, now, self._observer(), self._probe, self.thresholds))
        return _Holder(record, view, on_disk)

    def _grant(
        self,
        plan_id: str,
        ledger: ClaimRecord | None,
        now: datetime,
        takeover: tuple[_Holder, TakeoverReason] | None = None,
    ) -> int:
        ident = self.identity
        token = (ledger.fencing_token if ledger else 0) + 1
        new_ledger = ClaimRecord(
            plan_id=plan_id,
            fencing_token=token,
            holder=self.session_id,
            holder_host=ident.host,
            holder_pid=ident.pid,
            holder_pid_started_at=ident.pid_started_at,
            holder_boot_id=ident.boot_id,
            holder_pid_namespace=ident.pid_namespace,
            claimed_at=now,
            acquired_by="takeover" if takeover else "claim",
            takeover_reason=takeover[1] if takeover else None,
            previous_holder=takeover[0].record.session_id if takeover else None,
        )
        self.store.write_claim(new_ledger)
        update: dict[str, Any] = {
            "plan_id": plan_id,
            "fencing_token": token,
            "claimed_at": now,
            **self._beat(now),
            "last_call_at": now,
        }
        # The ledger is the commit point: from here on the claim is granted. The
        # record writes below follow it; if one fails (ENOSPC), the claim still
        # stands and the next beat rewrites the record (fault suite: disk).
        if takeover:
            update["previous_session"] = takeover[0].record.session_id
        self._record = self._current().model_copy(update=update)
        if takeover:
            self._after_commit(
                lambda: self._mark_displaced(takeover[0], new_ledger, takeover[1]),
                f"record of displaced session {takeover[0].record.session_id}",
            )
        self._after_commit(
            lambda: self.store.write_session(self._current()), "this session's record"
        )
        if takeover:
            self._log(
                "claim_taken_over",
                now,
                plan_id=plan_id,
                fencing_token=token,
                reason=takeover[1],
                previous_holder=takeover[0].record.session_id,
                force=takeover[1] in ("forced_stale", "holder_missing"),
            )
        else:
            self._log("claim_granted", now, plan_id=plan_id, fencing_token=token)
        return token

    def _mark_displaced(self, holder: _Holder, ledger: ClaimRecord, reason: str) -> None:
        """Clear the displaced holder's claim in its record, so readers of the kata
        schema do not see two sessions on one plan."""
        old = holder.record
        if not holder.on_disk or old.plan_id != ledger.plan_id:
            return
        loss = ClaimLost(
            plan_id=ledger.plan_id,
            taken_by=self.session_id,
            at=ledger.claimed_at,
            reason=reason,
            fencing_token=old.fencing_token,
        )
        self.store.write_session(self._without_claim(old).model_copy(update={"claim_lost": loss}))

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
        """Decide and write a release inside the store's lock (under the mutex);
        returns how to build the result, which happens after the lock is left."""
        with self.store.lock():
            now = self._clock()
            self._sync_claim()
            record = self._current()
            held = record.plan_id
            target = plan_id or held
            if target is None:
                return lambda: ReleaseResult(
                    outcome="not_held",
                    released=False,
                    plan_id=None,
                    message="You hold no plan; nothing to release.",
                )
            if fencing_token is not None and (
                held != target or record.fencing_token != fencing_token
            ):
                current = (
                    f"your token is {record.fencing_token}"
                    if held == target
                    else (f"you no longer hold plan {target}")
                )
                return lambda: ReleaseResult(
                    outcome="stale_token",
                    released=False,
                    plan_id=target,
                    message=f"Refused: fencing token {fencing_token} is stale ({current}). "
                    "Nothing was changed; call heartbeat or session_info to see what you hold.",
                )
            if held != target:
                return lambda: ReleaseResult(
                    outcome="not_held",
                    released=False,
                    plan_id=target,
                    message=f"You do not hold plan {target}; nothing to release.",
                )
            self._release_ledger(record, now, reason or "released")
            self._record = self._without_claim(record).model_copy(
                update={**self._beat(now), "last_call_at": now}
            )
            self._after_commit(
                lambda: self.store.write_session(self._current()), "this session's record"
            )
            self._log(
                "claim_released",
                now,
                plan_id=target,
                fencing_token=record.fencing_token,
                reason=reason or "released",
            )
            return lambda: ReleaseResult(
                outcome="released",
                released=True,
                plan_id=target,
                message=f"Released plan {target}; another session may claim it now.",
            )

    def _release_ledger(self, record: SessionRecord, now: datetime, reason: str) -> bool:
        """Free the plan in its ledger if it names this session; True if it did."""
        assert record.plan_id is not None
        ledger = self.store.read_claim(record.plan_id)
        if ledger is None or ledger.holder != self.session_id:
            return False
        self.store.write_claim(
            ledger.model_copy(
                update={
                    "holder": None,
                    "holder_host": None,
                    "holder_pid": None,
                    "holder_pid_started_at": None,
                    "holder_boot_id": None,
                    "holder_pid_namespace": None,
                    "released_at": now,
                    "release_reason": reason,
                }
            )
        )
        return True

    def _sync_claim(self) -> None:
        """Check the held claim against the ledger (inside the lock); on loss,
        clear it from this session's record and remember the loss."""
        record = self._current()
        if record.plan_id is None:
            return
        ledger = self.store.read_claim(record.plan_id)
        if (
            ledger is not None
            and ledger.holder == self.session_id
            and ledger.fencing_token == record.fencing_token
        ):
            return
        if ledger is not None and ledger.holder is not None:
            loss = ClaimLost(
                plan_id=record.plan_id,
                taken_by=ledger.holder,
                at=ledger.claimed_at,
                reason=ledger.takeover_reason or "claimed by another session",
                fencing_token=record.fencing_token,
            )
        else:
            loss = ClaimLost(
                plan_id=record.plan_id,
                taken_by=None,
                at=ledger.released_at if ledger else None,
                reason=(ledger.release_reason if ledger else None) or "claim ledger missing",
                fencing_token=record.fencing_token,
            )
        self._unreported_loss = loss
        self._record = self._without_claim(record).model_copy(update={"claim_lost": loss})
        self._log(
            "claim_lost",
            self._clock(),
            plan_id=loss.plan_id,
            fencing_token=loss.fencing_token,
            reason=loss.reason,
            taken_by=loss.taken_by,
        )

    @staticmethod
    def _after_commit(write: Callable[[], None], what: str) -> None:
        """Run a record write that follows a committed ledger change; a failure is
        logged, not raised: the claim or release already happened."""
        try:
            write()
        except StoreError as exc:
            log.warning("%s not written (the next heartbeat retries): %s", what, exc)

    def _log(self, kind: EventKind, now: datetime, **fields: Any) -> None:
        """Append an event for a change just written (inside the store's lock).

        The change itself is the truth: if the log cannot be written the change
        stands and the failure is logged to stderr, rather than failing a claim
        that is already granted.
        """
        ident = self.identity
        try:
            self.store.append_event(
                Event(
                    at=now,
                    event=kind,
                    session_id=self.session_id,
                    host=ident.host,
                    pid=ident.pid,
                    **fields,
                )
            )
        except StoreError as exc:
            log.warning("event %s not logged: %s", kind, exc)

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
            InvalidInputError: an unknown status, a bad plan id or branch.
            StoreError: the directory cannot be listed.
        """
        if status is not None and status not in STATUSES:
            raise InvalidInputError(
                f"status {status!r} is not accepted: use one of {', '.join(STATUSES)}"
            )
        if branch is not None:
            validate_label(branch, "branch", 256)
        records, unreadable = self.store.list_sessions()
        now = self._clock()
        observer = self._observer()
        own = self._record
        views = []
        for record in records:
            if own is not None and record.session_id == own.session_id:
                record = own
            view = view_of(record, assess(record, now, observer, self._probe, self.thresholds))
            if status is not None and view.status != status:
                continue
            if status is None and view.status == "ended" and not include_ended:
                continue
            if plan_id is not None and view.plan_id != plan_id:
                continue
            if branch is not None and view.branch != branch:
                continue
            views.append(view)
        return ListResult(sessions=views, unreadable=unreadable)

    def view_self(self) -> SessionView:
        """This session's view, from memory (what the next write will store)."""
        record = self._current()
        return view_of(
            record, assess(record, self._self_now(), self._observer(), self._probe, self.thresholds)
        )

    @property
    def claim_lost(self) -> ClaimLost | None:
        """The last claim loss recorded for this session, if any."""
        return self._current().claim_lost

    # -- helpers ------------------------------------------------------------------

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

    @staticmethod
    def _without_claim(record: SessionRecord) -> SessionRecord:
        return record.model_copy(
            update={"plan_id": None, "fencing_token": None, "claimed_at": None}
        )

    def _result(self, outcome: Any, plan_id: str, token: int | None, message: str) -> ClaimResult:
        return ClaimResult(
            outcome=outcome,
            claimed=True,
            plan_id=plan_id,
            fencing_token=token,
            holder=None,
            previous_session=None,
            message=message,
        )


def end_session_record(
    store: Store,
    session_id: str,
    reason: str,
    may_end: Callable[[SessionRecord], bool],
    clock: Clock = utc_now,
    probe: ProcessProbe = probe_process,
    lock_timeout: float | None = None,
) -> SessionRecord | None:
    """End a session recorded by another process, with the rules of :meth:`SessionService.end`.

    For callers that are not the session's server, such as Claude Code's
    SessionEnd hook: inside the store's lock, read ``<session_id>``'s record;
    when it exists, has not ended and ``may_end(record)`` agrees (the caller's
    proof that no server process still owns it), release its claim in the
    claim ledger (only if the ledger still names this session) and mark it
    ended with ``reason`` — the same code path as the server's own shutdown.
    ``Store.lock`` is re-entered by :meth:`SessionService.end`; the directory
    store's lock is re-entrant within one thread.

    Returns:
        The ended record, or None when there was nothing to end (no record,
        already ended, or ``may_end`` said no).

    Raises:
        InvalidInputError: ``session_id`` is not a valid id.
        StoreError, StoreBusyError: nothing was changed.
    """
    with store.lock(lock_timeout):
        record = store.read_session(session_id)
        if record is None or record.ended_at is not None or not may_end(record):
            return None
        service = SessionService.for_record(store, record, clock=clock, probe=probe)
        service.end(reason, lock_timeout)
        return service.record


_REASON_TEXT: dict[TakeoverReason, str] = {
    "proof_of_death": "its process is proven dead",
    "forced_stale": "it was stale and you forced the takeover",
    "holder_ended": "it had ended without releasing",
    "holder_missing": "its record is gone and you forced the takeover",
}


def _takeover_reason(holder: _Holder, force: bool) -> TakeoverReason | None:
    status = holder.view.status
    if status == "dead":
        return "proof_of_death"
    if status == "ended":
        return "holder_ended"
    if status == "stale" and force:
        return "forced_stale" if holder.on_disk else "holder_missing"
    return None


def _refusal(plan_id: str, holder: SessionView) -> str:
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


__all__ = ["ROLES", "STATUSES", "SessionService", "end_session_record"]
