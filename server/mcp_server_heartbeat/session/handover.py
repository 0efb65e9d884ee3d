"""Ending a session recorded by another process: the SessionEnd hook's path,
through the same code as a server's own shutdown (:meth:`~.ending.SessionEnding.end_within`)."""

from __future__ import annotations

from collections.abc import Callable

from ..domain.clock import Clock
from ..domain.models import SessionRecord
from ..host.probe import ProcessProbe, probe_process
from ..store import Store
from .service import SessionService


def end_session_record(
    store: Store,
    session_id: str,
    reason: str,
    may_end: Callable[[SessionRecord], bool],
    clock: Clock | None = None,
    probe: ProcessProbe = probe_process,
    lock_timeout: float | None = None,
) -> SessionRecord | None:
    """End a session recorded by another process, with the rules of :meth:`SessionService.end`.

    For callers that are not the session's server, such as Claude Code's
    SessionEnd hook: in one transaction, read ``<session_id>``'s record;
    when it exists, has not ended and ``may_end(record)`` agrees (the caller's
    proof that no server process still owns it), release its claim in the
    claim ledger (only if the ledger still names this session) and mark it
    ended with ``reason`` — the same code path as the server's own shutdown
    (:meth:`SessionEnding.end_within`), in the same transaction.

    Returns:
        The ended record, or None when there was nothing to end (no record,
        already ended, or ``may_end`` said no).

    Raises:
        InvalidInputError: ``session_id`` is not a valid id.
        StoreError, StoreBusyError: nothing was changed.
    """
    with store.transaction(lock_timeout) as tx:
        record = tx.read_session(session_id)
        if record is None or record.ended_at is not None or not may_end(record):
            return None
        service = SessionService.for_record(store, record, clock=clock, probe=probe)
        service.end_within(tx, reason)
    return service.record


__all__ = ["end_session_record"]
