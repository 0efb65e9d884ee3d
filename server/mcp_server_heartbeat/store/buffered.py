"""A unit of work whose writes wait for the commit: the part every store shares.

Reads see the committed state through the store's own lock-free reads, with
this transaction's writes on top (read your writes). Each record and ledger is
read from the store once per transaction: while a transaction is open the
committed state cannot change under it (the directory's lock and the memory
store's lock exclude every other writer; PostgreSQL reads inside the database
transaction, a ledger's row locked ``FOR UPDATE`` at its first read), so a
second read would only cost the same file read and validation again. Writes are buffered and
handed to the store's ``commit`` all together; an exception inside the
``with`` block drops them. Rules enforced here, once for every store: every name is safe
(:func:`~.names.safe_stem`); a plan's fencing token is never lowered, and a new
holder always gets a larger one (design invariant 2); a transaction writes at
most one claim ledger, so its commit point is one atomic write and "all or
nothing" holds for the directory too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..domain.errors import StoreError
from ..domain.models import ClaimRecord, Event, SessionRecord
from .names import safe_stem


class CommittedState(Protocol):
    """What a buffered transaction reads through: the store's committed state."""

    def now(self) -> datetime: ...
    def read_session(self, session_id: str) -> SessionRecord | None: ...
    def read_claim(self, plan_id: str) -> ClaimRecord | None: ...


class BufferedTransaction:
    """Buffered writes over a store's committed state; subclasses apply them in
    ``commit`` (the directory in its careful order, memory all at once).

    ``claims``, ``sessions`` (None = deleted) and ``events`` hold the writes in
    the order made.
    """

    def __init__(self, store: CommittedState) -> None:
        self._state = store
        self.claims: dict[str, ClaimRecord] = {}
        self.sessions: dict[str, SessionRecord | None] = {}
        self.events: list[Event] = []
        self._read_sessions: dict[str, SessionRecord | None] = {}
        self._read_claims: dict[str, ClaimRecord | None] = {}

    def now(self) -> datetime:
        """The store's clock (aware UTC)."""
        return self._state.now()

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The record as this transaction sees it (its own writes first), or None."""
        safe_stem(session_id, "session_id")
        if session_id in self.sessions:
            return self.sessions[session_id]
        if session_id in self._read_sessions:
            return self._read_sessions[session_id]
        found = self._read_sessions[session_id] = self._state.read_session(session_id)
        return found

    def write_session(self, record: SessionRecord) -> None:
        """Create or replace the record at commit."""
        safe_stem(record.session_id, "session_id")
        self.sessions[record.session_id] = record

    def delete_session(self, session_id: str) -> bool:
        """Remove the record at commit; False when there is none to remove."""
        existed = self._exists(session_id)
        self.sessions[session_id] = None
        return existed

    def _exists(self, session_id: str) -> bool:
        """Whether a record of ``session_id`` exists as this transaction sees it."""
        return self.read_session(session_id) is not None

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The plan's ledger as this transaction sees it, or None if never claimed.

        Raises:
            StoreError: the ledger exists but cannot be read.
        """
        safe_stem(plan_id, "plan_id")
        if plan_id in self.claims:
            return self.claims[plan_id]
        if plan_id in self._read_claims:
            return self._read_claims[plan_id]
        found = self._read_claims[plan_id] = self._state.read_claim(plan_id)
        return found  # an unreadable ledger raises every time: nothing is remembered

    def write_claim(self, claim: ClaimRecord) -> None:
        """Create or replace the plan's ledger at commit.

        Raises:
            StoreError: the write would lower the plan's fencing token.
        """
        current = self.read_claim(claim.plan_id)
        if current is not None and claim.fencing_token < current.fencing_token:
            raise StoreError(
                f"refused to lower plan {claim.plan_id}'s fencing token from "
                f"{current.fencing_token} to {claim.fencing_token}; nothing was changed"
            )
        if (
            current is not None
            and claim.holder is not None
            and claim.holder != current.holder
            and claim.fencing_token <= current.fencing_token
        ):
            raise StoreError(
                f"refused to give plan {claim.plan_id} to {claim.holder} under token "
                f"{claim.fencing_token}: a new holder needs a token above "
                f"{current.fencing_token}; nothing was changed"
            )
        if self.claims.keys() - {claim.plan_id}:
            raise StoreError(
                "one claim ledger per transaction (the commit point is one write); "
                "nothing was changed"
            )
        self.claims[claim.plan_id] = claim

    def append_event(self, event: Event) -> None:
        """Append one event at commit, after the change it records."""
        self.events.append(event)


__all__ = ["BufferedTransaction", "CommittedState"]
