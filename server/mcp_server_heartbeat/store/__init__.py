"""The storage seam: everything the service needs from storage, and nothing more.

The service talks to a :class:`Store`; the heartbeat directory
(:class:`~mcp_server_heartbeat.store.files.DirectoryStore`) is the default and
embedded implementation. A PostgreSQL store (sessions on several machines)
implements the same protocol: ``lock()`` becomes a transaction holding an
advisory lock, the records become rows. Nothing above this seam changes.

Contract every implementation keeps:

* ``lock()`` is an exclusive section across every process sharing the store;
  every read-modify-write of sessions or claims happens inside it. It raises
  :class:`~mcp_server_heartbeat.errors.StoreBusyError` after its timeout. It is
  re-entrant within one thread (``end_session_record`` ends a session inside
  the section in which it judged it).
* A write is atomic: a reader sees the old record or the new one, never a mix.
* Readers (``read_*``, ``list_*``) never modify the store and need no lock.
* ``write_claim`` never lowers a plan's ``fencing_token``.
* The event log is append-only; only ``prune_events`` (``gc``) shortens it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from ..domain.models import ClaimRecord, SessionRecord, Unreadable
from .directory.events import Event


class Store(Protocol):
    """Where session records and plan claims live (see module doc for the contract)."""

    @property
    def location(self) -> str:
        """A human-readable address of the store (a directory path, a DSN without secrets)."""
        ...

    def lock(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """Exclusive section across processes, waiting at most ``timeout`` seconds
        (None: the store's default). Raises StoreBusyError on timeout."""
        ...

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The session's record, or None when missing or unreadable."""
        ...

    def write_session(self, record: SessionRecord) -> None:
        """Create or replace the session's record atomically. Raises StoreError."""
        ...

    def list_sessions(self) -> tuple[list[SessionRecord], list[Unreadable]]:
        """Every readable session record, and what could not be read (and why)."""
        ...

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The plan's claim ledger, or None if the plan was never claimed."""
        ...

    def write_claim(self, claim: ClaimRecord) -> None:
        """Create or replace the plan's claim ledger atomically. Raises StoreError."""
        ...

    def iter_claims(self) -> Iterator[ClaimRecord]:
        """Every readable claim ledger (held or free)."""
        ...

    def append_event(self, event: Event) -> None:
        """Append one event to the event log; called inside ``lock()``, right after
        the change it records. Raises StoreError."""
        ...

    def read_events(self) -> list[Event]:
        """Every readable event, oldest first. Reads only."""
        ...

    def delete_session(self, session_id: str) -> bool:
        """Remove a session's record (``gc``, inside ``lock()``); False if it was
        already gone. Claim ledgers are never deleted. Raises StoreError."""
        ...

    def prune_temp_files(self, before: datetime, dry_run: bool = False) -> list[str]:
        """Remove the debris of writes killed before they completed, last modified
        before ``before`` (UTC), inside ``lock()``; returns their names. A store
        with no such debris returns []. Raises StoreError."""
        ...

    def prune_events(self, before: datetime, dry_run: bool = False) -> int:
        """Drop events older than ``before`` (UTC) inside ``lock()``; returns how
        many were (or, with ``dry_run``, would be) dropped. Raises StoreError."""
        ...


__all__ = ["Store"]
