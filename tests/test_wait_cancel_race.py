"""A cancellation that arrives after the granting attempt, while the wait closes
its ledger watch, must still be seen by the wait: the SDK's dispatcher never
answers a request its peer cancelled (``_handle_request``: ``if not
dctx.cancel_requested.is_set(): write result``), so a grant returned then would
leave the session holding a plan its agent was told nothing about. The wait
gives such a grant back."""

from __future__ import annotations

import anyio
import anyio.from_thread
import pytest

from mcp_server_heartbeat.session.wait_loop import wait_for_plan

pytestmark = pytest.mark.anyio


async def test_a_cancel_during_the_watch_close_after_a_grant_leaves_the_plan_held(make_service):
    a, b = make_service("a", 101), make_service("b", 102)
    a.claim("043")
    cancel_requested = []
    real_watch = b.store.watch_claim

    def watch_claim(plan_id):
        watch = real_watch(plan_id)
        real_close = watch.close

        def close():
            # notifications/cancelled arrives now (the dispatcher sets the flag
            # and cancels the handler's scope)
            cancel_requested.append(True)
            anyio.from_thread.run_sync(scope.cancel)
            real_close()

        watch.close = close
        return watch

    b.store.watch_claim = watch_claim
    real_attempt = b.wait_attempt

    def attempt(plan_id, until):
        step = real_attempt(plan_id, until)
        if not step.done:
            a.release(plan_id)  # the holder finishes: the next attempt grants
        return step

    b.wait_attempt = attempt
    answered = None
    with anyio.CancelScope() as scope:
        result = await wait_for_plan(b, "043", 60)
        if not cancel_requested:  # the dispatcher answers only uncancelled requests
            answered = result
    assert cancel_requested and answered is None  # the client never learns of a grant
    ledger = b.store.read_claim("043")
    # a cancelled wait never holds the plan
    assert ledger.holder is None, f"cancelled wait left {ledger.holder} holding 043"
