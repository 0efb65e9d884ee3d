"""A session that lost a plan, then moved on (claimed another plan and released
it), is not refused its commits: the record's ``claim_lost`` is cleared when
the session is granted a new claim, so the git hooks stop judging the old
loss."""

from __future__ import annotations

from mcp_server_heartbeat.cli.git_cmd import Committing, check_session


def test_a_session_that_moved_on_after_a_loss_is_not_refused(make_service, clock):
    a = make_service("a", pid=101)
    a.claim("043")
    clock.advance(301)
    b = make_service("b", pid=102)
    assert b.claim("043", force=True).outcome == "taken_over"
    assert a.heartbeat().claim_lost is not None  # a learns of the loss and stops
    assert a.claim("044").outcome == "claimed"  # a moves on to other work ...
    holding = a.store.read_session("a")
    assert check_session(Committing(None, a.store, holding), "commit") is None  # passes
    a.release("044", reason="done")  # ... and finishes it
    done = a.store.read_session("a")
    assert done.plan_id is None
    refusal = check_session(Committing(None, a.store, done), "commit")
    assert refusal is None, refusal
