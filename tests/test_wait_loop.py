"""wait_for_plan's loop in one process (issue 12 part 2): answers at once when
the session's own record decides, refuses a wait longer than the cap, and
never leaves a cancelled wait holding the plan, even when the grant raced the
cancellation. Across processes: tests/test_wait_stdio.py."""

from __future__ import annotations

import anyio
import anyio.from_thread
import pytest

from mcp_server_heartbeat.domain.errors import InvalidInputError
from mcp_server_heartbeat.domain.queue import MAX_WAIT_S
from mcp_server_heartbeat.session.wait_loop import wait_for_plan

pytestmark = pytest.mark.anyio


async def test_a_free_plan_is_claimed_at_once(make_service):
    b = make_service("b", 102)
    result = await wait_for_plan(b, "043", 5)
    assert (result.outcome, result.fencing_token) == ("claimed", 1)
    assert result.waited_s is not None and result.waited_s < 5
    assert b.store.read_claim("043").waiters == []


async def test_holding_another_plan_answers_at_once_without_queueing(make_service):
    a, b = make_service("a", 101), make_service("b", 102)
    a.claim("043")
    b.claim("044")
    result = await wait_for_plan(b, "043", 60)
    assert (result.outcome, result.held_plan) == ("holding_other", "044")
    assert b.store.read_claim("043").waiters == []


@pytest.mark.parametrize("timeout_s", [-1, MAX_WAIT_S + 1, True, "10"])
async def test_a_wait_outside_the_cap_is_refused_saying_what_is_accepted(make_service, timeout_s):
    b = make_service("b", 102)
    with pytest.raises(InvalidInputError, match="timeout_s must be"):
        await wait_for_plan(b, "043", timeout_s)
    assert b.store.read_claim("043") is None


async def test_a_cancelled_wait_leaves_the_queue(make_service):
    a, b = make_service("a", 101), make_service("b", 102)
    a.claim("043")
    with anyio.move_on_after(0.5):
        await wait_for_plan(b, "043", 60)
    ledger = b.store.read_claim("043")
    assert (ledger.holder, ledger.waiters) == ("a", [])


async def test_a_grant_that_raced_the_cancellation_is_given_back(make_service):
    """The attempt runs shielded (a transaction is never cut in half); when the
    request was cancelled while it granted the plan, the claim is released."""
    a, b = make_service("a", 101), make_service("b", 102)
    a.claim("043")
    real_attempt = b.wait_attempt
    with anyio.CancelScope() as scope:

        def attempt_then_cancelled(plan_id, until):
            if b.store.read_claim(plan_id).holder == "a":
                step = real_attempt(plan_id, until)  # queued behind a's claim
                a.release(plan_id)
                return step
            step = real_attempt(plan_id, until)  # granted ...
            anyio.from_thread.run_sync(scope.cancel)  # ... as the client cancels
            return step

        b.wait_attempt = attempt_then_cancelled
        await wait_for_plan(b, "043", 60)
    assert scope.cancelled_caught
    ledger = b.store.read_claim("043")
    assert (ledger.holder, ledger.fencing_token, ledger.release_reason) == (
        None,
        2,
        "wait cancelled",
    )
    assert b.record.plan_id is None
    kinds = [(e.event, e.session_id) for e in b.store.read_events() if e.plan_id == "043"]
    assert kinds[-2:] == [("claim_granted", "b"), ("claim_released", "b")]
