"""``wait_for_plan``'s waiting: wake on a change, report progress, clean up on cancel.

The loop alternates one short attempt (:meth:`~.waiting.WaitOperations.wait_attempt`,
in a worker thread, under the mutex and one store transaction) with a wait
for a change of the plan's ledger (:meth:`~..store.Store.watch_claim`: a short
poll of the ledger file's stat for the directory, LISTEN/NOTIFY for
PostgreSQL), at most :data:`RECHECK_S` seconds, so a holder that dies or a
waiter that goes away (no ledger change) is noticed too. Between attempts it
holds neither the mutex nor the store's lock: the heartbeat and other tools
keep working.

Cancellation (``notifications/cancelled``, the end of the session): the
attempt runs shielded, so a transaction is never cut in half; if a grant
raced the cancellation, the claim is released again at once; the session's
queue entry is removed. A wait that times out keeps its entry for
:data:`~..domain.queue.RETRY_GRACE_S` seconds, so a new call keeps the place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..domain import queue
from ..domain.errors import HeartbeatError, InvalidInputError, StoreBusyError
from ..domain.models import ClaimResult

if TYPE_CHECKING:
    from .service import SessionService

log = logging.getLogger(__name__)

RECHECK_S = 1.0
"""The longest wait (seconds) between two attempts when nothing in the ledger
changed (a holder proven dead or a waiter gone changes no ledger)."""

GRANTED = frozenset({"claimed", "taken_over"})

Progress = Callable[[float, float, str], Awaitable[None]]
"""``progress(waited_s, timeout_s, message)``: an MCP progress notification."""


async def wait_for_plan(
    service: SessionService,
    plan_id: str,
    timeout_s: float = queue.DEFAULT_WAIT_S,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> ClaimResult:
    """The ``wait_for_plan`` tool: wait until ``plan_id`` can be claimed, then
    claim it (outcome ``claimed`` or ``taken_over``, as ``claim_plan`` without
    force), or after ``timeout_s`` seconds return the last refusal
    (``held_by_other``: the holder; ``reserved``: the first waiter) with
    ``queue_position``, ``waited_s`` and ``retry_after_s``. ``already_yours``
    and ``holding_other`` answer at once, as ``claim_plan``.

    Args:
        timeout_s: seconds, 0 to :data:`~..domain.queue.MAX_WAIT_S` (0: one
            attempt, queued for the grace period).
        progress: called after each attempt while waiting (the MCP layer
            sends a progress notification when the client asked for them).

    Raises:
        InvalidInputError: ``timeout_s`` outside 0..300 seconds.
        StoreError: the session ended or was superseded while waiting.
        StoreBusyError: the store stayed busy until the deadline (a busy
            store earlier is retried after :data:`RECHECK_S` seconds).
        anyio's cancellation: the request was cancelled; no claim is kept and
            the queue entry is removed.
    """
    try:
        timeout = queue.check_timeout(timeout_s)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    started = monotonic()
    deadline = started + timeout
    until = service._clock() + timedelta(seconds=timeout + queue.RETRY_GRACE_S)
    watch = await anyio.to_thread.run_sync(service.store.watch_claim, plan_id)
    leave = "remove"
    granted: ClaimResult | None = None
    closed = False
    try:
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    step = await anyio.to_thread.run_sync(service.wait_attempt, plan_id, until)
            except StoreBusyError:
                if monotonic() >= deadline:
                    raise
                log.info("wait for plan %s: the store is busy; trying again", plan_id)
                await anyio.sleep(min(RECHECK_S, max(0.0, deadline - monotonic())))
                continue
            waited = round(monotonic() - started, 3)
            if step.done:
                leave = "none"
                result = step.result()
                granted = result if result.outcome in GRANTED else None
                # Close the watch first, so that nothing awaits between the last
                # look for a cancellation and the return: the SDK never answers a
                # request its peer cancelled, so a cancel that raced the grant must
                # be seen here (and the grant given back), not after.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(watch.close)
                closed = True
                await anyio.lowlevel.checkpoint()  # a cancellation that raced the grant
                return result.model_copy(update={"waited_s": waited})
            if monotonic() >= deadline:
                leave = "grace"
                result = step.result()
                return result.model_copy(
                    update={
                        "waited_s": waited,
                        "queue_position": step.place,
                        "retry_after_s": 0.0,
                        "message": queue.timed_out_message(result.message, waited, step.place),
                    }
                )
            if progress is not None:
                await progress(
                    waited, timeout, queue.waiting_message(plan_id, step.place, step.holder)
                )
            left = max(0.0, deadline - monotonic())
            await anyio.to_thread.run_sync(watch.wait, min(left, RECHECK_S), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        if granted is not None:
            with anyio.CancelScope(shield=True):
                await _release_granted(service, granted)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await _clean_up(service, plan_id, leave)
            if not closed:
                await anyio.to_thread.run_sync(watch.close)


async def _release_granted(service: SessionService, granted: ClaimResult) -> None:
    """Give back a claim granted to a wait that was cancelled meanwhile."""
    try:
        await anyio.to_thread.run_sync(
            lambda: service.release(
                granted.plan_id, reason="wait cancelled", fencing_token=granted.fencing_token
            )
        )
    except HeartbeatError as exc:  # the session may be ending: its end releases it
        log.warning("could not give back plan %s after a cancelled wait: %s", granted.plan_id, exc)


async def _clean_up(service: SessionService, plan_id: str, leave: str) -> None:
    """Remove this session's queue entry (``remove``) or let it expire after
    the grace (``grace``); ``none``: the attempt already did."""
    if leave == "none":
        return
    try:
        await anyio.to_thread.run_sync(lambda: service.leave_queue(plan_id, grace=leave == "grace"))
    except HeartbeatError as exc:  # the entry expires by itself at its ``until``
        log.warning("could not update the wait queue of plan %s: %s", plan_id, exc)


__all__ = ["GRANTED", "RECHECK_S", "Progress", "wait_for_plan"]
