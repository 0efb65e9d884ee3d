"""An in-memory :class:`~.Store`: the executable reference of the store contract,
and the test double every layer above the seam can use.

Everything lives in dictionaries guarded by one lock, inside one process (any
number of threads). A transaction buffers its writes and applies them at
commit, all together, or drops them when the block raises: the semantics a
database gives, without the database. It keeps no file and crosses no process,
so it proves the rules, not durability.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..domain.clock import Clock, utc_now
from ..domain.errors import StoreBusyError
from ..domain.models import ClaimRecord, Event, SessionRecord, Unreadable
from .buffered import BufferedTransaction
from .names import safe_stem
from .watch import PollingWatch

DEFAULT_LOCK_TIMEOUT_S = 5.0


class MemoryTransaction(BufferedTransaction):
    """One unit of work on a :class:`MemoryStore` (see :meth:`MemoryStore.transaction`).

    Reads see the committed state plus this transaction's own writes.
    """

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self._store = store

    def _apply(self) -> None:
        store = self._store
        store._claims.update(self.claims)
        for plan_id in self.claims:
            store._changes[plan_id] = store._changes.get(plan_id, 0) + 1
        for session_id, record in self.sessions.items():
            if record is None:
                store._sessions.pop(session_id, None)
            else:
                store._sessions[session_id] = record
        store._events.extend(self.events)


class MemoryStore:
    """Session records, claim ledgers and events in memory (see module doc).

    Args:
        clock: the store's "now" for liveness judgments (aware UTC); tests
            inject a fake one.
        lock_timeout: seconds :meth:`transaction` waits by default.
    """

    def __init__(
        self, clock: Clock = utc_now, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    ) -> None:
        self._clock = clock
        self.lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._holder: int | None = None
        self._sessions: dict[str, SessionRecord] = {}
        self._claims: dict[str, ClaimRecord] = {}
        self._events: list[Event] = []
        self._changes: dict[str, int] = {}

    @property
    def location(self) -> str:
        """``memory``: nothing outside this process."""
        return "memory"

    def prepare(self) -> list[str]:
        """Nothing to create; no warnings."""
        return []

    def exists(self) -> bool:
        """Always true: the store exists as long as the process does."""
        return True

    def now(self) -> datetime:
        """The injected clock's reading (aware UTC)."""
        return self._clock()

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[MemoryTransaction]:
        """An exclusive unit of work: writes are applied together when the block
        ends normally, dropped when it raises.

        Raises:
            StoreBusyError: another transaction held the store for ``timeout``
                seconds (None: ``lock_timeout``); nothing was changed.
        """
        wait = self.lock_timeout if timeout is None else timeout
        if self._holder == threading.get_ident():
            raise RuntimeError(
                "a transaction of this store is already open in this thread; "
                "transactions are not re-entrant"
            )
        if not self._lock.acquire(timeout=max(0.0, wait)):
            raise StoreBusyError(
                f"the memory store stayed locked for {wait:g} s; nothing was changed, try again"
            )
        self._holder = threading.get_ident()
        try:
            tx = MemoryTransaction(self)
            yield tx
            tx._apply()
        finally:
            self._holder = None
            self._lock.release()

    def busy_holder(self, wait: float = 0.0) -> dict[str, Any] | None:
        """The thread holding a transaction, or None (``wait`` is ignored)."""
        holder = self._holder
        if holder is None:
            return None
        return {"thread": holder, "description": f"thread {holder} of this process"}

    # -- reads: no lock, never modify ------------------------------------------------

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The committed record of ``session_id``, or None."""
        safe_stem(session_id, "session_id")
        return self._sessions.get(session_id)

    def list_sessions(self) -> tuple[list[SessionRecord], list[Unreadable]]:
        """Every committed record, by session id; nothing is ever unreadable here."""
        return [self._sessions[key] for key in sorted(self._sessions)], []

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The committed ledger of ``plan_id``, or None if never claimed."""
        safe_stem(plan_id, "plan_id")
        return self._claims.get(plan_id)

    def iter_claims(self) -> Iterator[ClaimRecord]:
        """Every committed ledger, by plan id."""
        for key in sorted(self._claims):
            yield self._claims[key]

    def read_events(self) -> list[Event]:
        """Every event, oldest first."""
        return list(self._events)

    def plan_history(self, plan_id: str, limit: int | None) -> list[Event]:
        """The ``limit`` most recent events of ``plan_id`` (None: all), oldest first."""
        safe_stem(plan_id, "plan_id")
        if limit is not None and limit <= 0:
            return []
        mine = [event for event in self._events if event.plan_id == plan_id]
        return mine if limit is None else mine[-limit:]

    def count_plan_events(self, plan_id: str, kinds: frozenset[str]) -> int:
        """How many events of ``plan_id`` with a kind in ``kinds`` there are."""
        safe_stem(plan_id, "plan_id")
        return sum(1 for e in self._events if e.plan_id == plan_id and e.event in kinds)

    def unreadable_events(self) -> int:
        """Always 0: nothing unreadable can enter memory."""
        return 0

    # -- gc -----------------------------------------------------------------------------

    def prune_events(self, before: datetime, dry_run: bool = False) -> int:
        """Drop events older than ``before`` (UTC); returns how many (would be) dropped."""
        with self._locked():
            old = [event for event in self._events if event.at < before]
            if not dry_run:
                self._events = [event for event in self._events if event.at >= before]
            return len(old)

    wakes_on_change = False

    def wait_for_change(self, timeout: float) -> bool:
        """This store hears no change hints: sleeps ``timeout`` seconds, returns False."""
        time.sleep(max(0.0, timeout))
        return False

    def watch_claim(self, plan_id: str) -> PollingWatch:
        """A watch of ``plan_id``'s ledger: a count of its committed writes,
        looked at every 0.1 s."""
        safe_stem(plan_id, "plan_id")
        return PollingWatch(lambda: self._changes.get(plan_id, 0))

    def prune_temp_files(self, before: datetime, dry_run: bool = False) -> list[str]:
        """No temp files in memory: always []."""
        return []

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self.transaction():
            yield


__all__ = ["MemoryStore", "MemoryTransaction"]
