"""The fenced-commit rules (domain/fencing.py), pure: trailer values, the
current-loss rule of the hooks and the history rule of ``verify``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mcp_server_heartbeat.domain.errors import InvalidInputError
from mcp_server_heartbeat.domain.fencing import (
    ClaimRef,
    current_loss,
    format_trailer,
    judge,
    loss_message,
    parse_claim,
    token_ends,
)
from mcp_server_heartbeat.domain.models import ClaimRecord, Event

T0 = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)


def test_trailer_round_trip_and_refusals():
    assert format_trailer("043", 7) == "Heartbeat-Claim: 043#7"
    assert parse_claim(" 043#7 ") == ClaimRef("043", 7)
    assert str(parse_claim("feat-login#12")) == "feat-login#12"
    for bad in ("043", "043#", "043#0", "043#-1", "#7", "../x#1", "043#7 extra"):
        with pytest.raises(InvalidInputError, match="<plan_id>#<fencing_token>"):
            parse_claim(bad)


def ledger(**update):
    base = dict(
        plan_id="043",
        fencing_token=8,
        holder="9d81e4b2-aaaa",
        holder_host="box2",
        claimed_at=T0,
        acquired_by="takeover",
        takeover_reason="forced_stale",
    )
    return ClaimRecord(**{**base, **update})


def test_current_loss_only_when_a_later_token_is_held_by_another_session():
    claim = ClaimRef("043", 7)
    loss = current_loss(["me"], claim, ledger())
    assert loss is not None and loss.holder_token == 8
    text = loss_message(loss, "push")
    assert "push refused" in text and "9d81e4b2 on host box2" in text
    assert "since 14:00 UTC 2026-11-21" in text and "forced: your session had gone stale" in text
    assert "--no-verify" in text
    assert current_loss(["me"], claim, ledger(holder="me")) is None
    assert current_loss(["me"], claim, ledger(holder=None)) is None  # released again
    assert current_loss(["me"], claim, ledger(fencing_token=7)) is None
    assert current_loss(["me"], claim, None) is None
    plain = current_loss(["me"], claim, ledger(acquired_by="claim", takeover_reason=None))
    assert plain is not None and plain.how == "claimed after your claim ended"


def event(kind, token, minutes, **extra):
    return Event(
        at=T0 + timedelta(minutes=minutes),
        event=kind,
        session_id=extra.pop("session_id", "s"),
        plan_id="043",
        fencing_token=token,
        **extra,
    )


def test_history_rule():
    events = [
        event("claim_granted", 1, 0),
        event("claim_released", 1, 10),
        event("claim_granted", 2, 20, session_id="a"),
        event("claim_taken_over", 3, 30, session_id="b"),
        event("claim_lost", 2, 35, session_id="a", taken_by="b"),
    ]
    ends = token_ends(events)
    assert (
        ends[1].fate == "released" and ends[2].fate == "taken_over" and ends[2].at == events[3].at
    )
    at = T0 + timedelta(minutes=31)
    assert judge(ClaimRef("043", 1), at, 3, ends).status == "valid"  # released: stays valid
    assert judge(ClaimRef("043", 2), at, 3, ends).status == "lost"
    assert judge(ClaimRef("043", 2), events[3].at, 3, ends).status == "lost"  # at: refused
    assert judge(ClaimRef("043", 2), T0 + timedelta(minutes=29), 3, ends).status == "valid"
    assert judge(ClaimRef("043", 3), at, 3, ends).status == "valid"
    assert judge(ClaimRef("043", 4), at, 3, ends).status == "unknown"
    assert judge(ClaimRef("043", 1), at, None, {}).status == "unknown"
    assert judge(ClaimRef("043", 1), at, 3, {}).status == "unverified"  # log pruned
    only_lost = token_ends([events[4]])  # the takeover itself pruned: the loser's notice
    assert judge(ClaimRef("043", 2), at, 3, only_lost).status == "valid"
    assert judge(ClaimRef("043", 2), T0 + timedelta(minutes=40), 3, only_lost).refused


def test_a_rebased_commit_keeps_its_author_time_and_its_verdict():
    """The new holder rebases its predecessor's commits after a takeover: the
    committer time moves past the takeover, the author time (when the work was
    made) does not; both ``verify`` and ``pre-push`` judge by the author time."""
    from mcp_server_heartbeat.cli.git_cmd import Commit, verify_commits
    from mcp_server_heartbeat.store.memory import MemoryStore

    store = MemoryStore()
    with store.transaction() as tx:
        tx.write_claim(ledger(fencing_token=3, holder="b"))
        for item in (
            event("claim_granted", 2, 20, session_id="a"),
            event("claim_taken_over", 3, 30, session_id="b", previous_holder="a"),
        ):
            tx.append_event(item)
    rebased = Commit(
        sha="c0ffee" * 6 + "ab",
        committed_at=T0 + timedelta(minutes=45),  # rebased after the takeover
        authored_at=T0 + timedelta(minutes=25),  # made while token 2 was held
        claims=["043#2"],
    )
    assert [v.judgment.status for v in verify_commits(store, [rebased])] == ["valid"]
    by_committer = verify_commits(store, [rebased], by="committer")
    assert [v.judgment.status for v in by_committer] == ["lost"]
    late = Commit(
        sha="deadbe" * 6 + "ef",
        committed_at=T0 + timedelta(minutes=45),
        authored_at=T0 + timedelta(minutes=40),  # made after token 2 was lost
        claims=["043#2"],
    )
    assert [v.judgment.status for v in verify_commits(store, [late])] == ["lost"]
