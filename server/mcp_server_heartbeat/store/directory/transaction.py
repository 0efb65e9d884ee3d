"""The heartbeat directory's unit of work: buffered writes applied in a careful
order under the directory's lock (see :class:`DirectoryTransaction`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

from ...domain.errors import StoreError
from ...domain.models import ClaimRecord, SessionRecord
from ..buffered import BufferedTransaction, CommittedState
from .events import EventLog


class DirectoryFiles(CommittedState, Protocol):
    """What the commit writes through: the directory store's single-file writes
    (:class:`~.store.DirectoryStore`), each atomic on its own."""

    directory: Path
    events: EventLog

    def write_claim(self, claim: ClaimRecord) -> None: ...
    def write_session(self, record: SessionRecord) -> None: ...
    def delete_session(self, session_id: str) -> bool: ...


log = logging.getLogger(__name__)


class DirectoryTransaction(BufferedTransaction):
    """One unit of work on a :class:`~.store.DirectoryStore`, under its lock.

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

    def __init__(self, store: DirectoryFiles) -> None:
        super().__init__(store)
        self._store = store

    def _exists(self, session_id: str) -> bool:
        """A record that exists but cannot be read still counts (gc removes it)."""
        return super()._exists(session_id) or (
            session_id not in self.sessions
            and os.path.lexists(self._store.directory / f"{session_id}.json")
        )

    def commit(self) -> None:
        """Apply the buffered writes in the order of the class doc (called by
        :meth:`~.store.DirectoryStore.transaction`, under the lock).

        Raises:
            StoreError: the commit point failed; nothing after it was written.
        """
        store = self._store
        for claim in self.claims.values():
            store.write_claim(claim)
        committed = bool(self.claims)
        for session_id, record in self.sessions.items():
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
        for event in self.events:
            try:
                store.events.append(event)
            except StoreError as exc:
                log.warning("event %s not logged: %s", event.event, exc)


__all__ = ["DirectoryTransaction"]
