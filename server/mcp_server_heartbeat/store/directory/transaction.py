"""The heartbeat directory's unit of work: buffered writes applied in a careful
order under the directory's lock (see :class:`DirectoryTransaction`)."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import TYPE_CHECKING

from ...domain.errors import StoreError
from ...domain.models import ClaimRecord, Event, SessionRecord
from ..names import safe_stem

if TYPE_CHECKING:
    from .store import DirectoryStore

log = logging.getLogger(__name__)


class DirectoryTransaction:
    """One unit of work on a :class:`DirectoryStore`, under its lock.

    Writes are buffered; reads see them. At commit they are applied in this order:

    1. **Claim ledgers** — the commit point. If one cannot be written, StoreError
       is raised and nothing else is written: the claim, release or takeover
       did not happen.
    2. **Session records** (writes and deletions, in the order made). After a
       ledger was written, a failure (disk full) is logged, not raised: the claim
       stands and the next heartbeat rewrites the record (fault suite: disk).
       Without a ledger the records are the commit point: a failure raises and
       no event is written.
    3. **Events**, in the order appended. A failure is logged: the change is the
       truth, the log its audit trail.

    An exception inside the ``with`` block discards every buffered write.
    """

    def __init__(self, store: DirectoryStore) -> None:
        self._store = store
        self._claims: dict[str, ClaimRecord] = {}
        self._sessions: dict[str, SessionRecord | None] = {}
        self._events: list[Event] = []

    def now(self) -> datetime:
        """The store's clock (aware UTC)."""
        return self._store.now()

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The record as this transaction sees it (its own writes first), or None."""
        safe_stem(session_id, "session_id")
        if session_id in self._sessions:
            return self._sessions[session_id]
        return self._store.read_session(session_id)

    def write_session(self, record: SessionRecord) -> None:
        """Write the record at commit."""
        safe_stem(record.session_id, "session_id")
        self._sessions[record.session_id] = record

    def delete_session(self, session_id: str) -> bool:
        """Remove the record at commit; False when there is none to remove."""
        safe_stem(session_id, "session_id")
        existed = self.read_session(session_id) is not None or (
            session_id not in self._sessions
            and os.path.lexists(self._store.directory / f"{session_id}.json")
        )
        self._sessions[session_id] = None
        return existed

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The ledger as this transaction sees it, or None. Raises StoreError
        when it is unreadable."""
        safe_stem(plan_id, "plan_id")
        if plan_id in self._claims:
            return self._claims[plan_id]
        return self._store.read_claim(plan_id)

    def write_claim(self, claim: ClaimRecord) -> None:
        """Write the ledger at commit.

        Raises:
            StoreError: the write would lower the plan's fencing token.
        """
        current = self.read_claim(claim.plan_id)
        if current is not None and claim.fencing_token < current.fencing_token:
            raise StoreError(
                f"refused to lower plan {claim.plan_id}'s fencing token from "
                f"{current.fencing_token} to {claim.fencing_token}; nothing was changed"
            )
        self._claims[claim.plan_id] = claim

    def append_event(self, event: Event) -> None:
        """Append the event at commit."""
        self._events.append(event)

    def commit(self) -> None:
        """Apply the buffered writes in the order of the class doc (called by
        :meth:`DirectoryStore.transaction`, under the lock).

        Raises:
            StoreError: the commit point failed; nothing after it was written.
        """
        store = self._store
        for claim in self._claims.values():
            store.write_claim(claim)
        committed = bool(self._claims)
        for session_id, record in self._sessions.items():
            try:
                if record is None:
                    store.delete_session(session_id)
                else:
                    store.write_session(record)
            except StoreError as exc:
                if not committed:
                    raise
                log.warning(
                    "session record %s not written (the next heartbeat retries): %s",
                    session_id,
                    exc,
                )
        for event in self._events:
            try:
                store.events.append(event)
            except StoreError as exc:
                log.warning("event %s not logged: %s", event.event, exc)


__all__ = ["DirectoryTransaction"]
