"""The lease rules as a table: pure inputs (this session's record, the plan's
ledger, the holder with its liveness, force) → a decision and the message the
agent reads. No store, no clock, no process: every liveness is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mcp_server_heartbeat.domain import lease
from mcp_server_heartbeat.domain.liveness import Liveness, Observer, Thresholds, assess, view_of
from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord
from mcp_server_heartbeat.host.probe import ProcessState

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
ME = "me"
OTHER = "other"


def own(plan_id: str | None = None, token: int | None = None) -> SessionRecord:
    return SessionRecord(
        session_id=ME,
        plan_id=plan_id,
        fencing_token=token,
        claimed_at=T0 if plan_id else None,
        host="h",
        pid=10,
    )


def ledger(holder: str | None, token: int, plan_id: str = "p", **extra: Any) -> ClaimRecord:
    return ClaimRecord(plan_id=plan_id, fencing_token=token, holder=holder, claimed_at=T0, **extra)


def holder(
    status: str,
    on_disk: bool = True,
    alive: bool | None = True,
    age: float | None = 5.0,
    branch: str | None = "feat",
) -> lease.Holder:
    """The holder OTHER of plan p as the claimant judged it: ``status`` given."""
    record = SessionRecord(
        session_id=OTHER, plan_id="p", fencing_token=4, branch=branch, host="h", pid=20
    )
    liveness = Liveness(
        status=status,  # type: ignore[arg-type]
        health="healthy",
        heartbeat_age_s=age,
        seconds_until_stale=0.0,
        clock_skew_s=None,
        process_alive=None if status == "ended" else alive,
        relationship="other_active",
    )
    return lease.Holder(record, view_of(record, liveness), on_disk)


# (name, record, ledger, holder, force) -> (outcome, token, takeover_reason, claimed)
CLAIMS = [
    ("free, never claimed", own(), None, None, False, "claimed", 1, None, True),
    ("free, released at token 4", own(), ledger(None, 4), None, False, "claimed", 5, None, True),
    ("mine by my record", own("p", 3), ledger(ME, 3), None, False, "already_yours", 3, None, True),
    ("mine by the ledger", own(), ledger(ME, 6), None, False, "already_yours", 6, None, True),
    ("I hold another", own("q", 2), None, None, False, "holding_other", None, None, False),
    ("I hold another, force", own("q", 2), ledger(OTHER, 4), holder("dead"), True,
     "holding_other", None, None, False),
    ("active holder", own(), ledger(OTHER, 4), holder("active"), False,
     "held_by_other", None, None, False),
    ("active holder, force", own(), ledger(OTHER, 4), holder("active"), True,
     "held_by_other", None, None, False),
    ("idle holder, force", own(), ledger(OTHER, 4), holder("idle"), True,
     "held_by_other", None, None, False),
    ("active remote holder, force", own(), ledger(OTHER, 4), holder("active", alive=None), True,
     "held_by_other", None, None, False),
    ("proof of death", own(), ledger(OTHER, 4), holder("dead", alive=False), False,
     "taken_over", 5, "proof_of_death", True),
    ("ended without releasing", own(), ledger(OTHER, 4), holder("ended"), False,
     "taken_over", 5, "holder_ended", True),
    ("stale, not forced", own(), ledger(OTHER, 4), holder("stale", age=400), False,
     "held_by_other", None, None, False),
    ("stale, forced", own(), ledger(OTHER, 4), holder("stale", age=400), True,
     "taken_over", 5, "forced_stale", True),
    ("stale remote, not forced", own(), ledger(OTHER, 4), holder("stale", alive=None), False,
     "held_by_other", None, None, False),
    ("stale remote, forced", own(), ledger(OTHER, 4), holder("stale", alive=None), True,
     "taken_over", 5, "forced_stale", True),
    ("record gone, stale, forced", own(), ledger(OTHER, 4), holder("stale", on_disk=False), True,
     "taken_over", 5, "holder_missing", True),
    ("record gone, proven dead", own(), ledger(OTHER, 4),
     holder("dead", on_disk=False, alive=False), False, "taken_over", 5, "proof_of_death", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "plan_ledger", "plan_holder", "force", "outcome", "token", "reason", "claimed"),
    [case[1:] for case in CLAIMS],
    ids=[case[0] for case in CLAIMS],
)
def test_claim_decisions(
    record: SessionRecord,
    plan_ledger: ClaimRecord | None,
    plan_holder: lease.Holder | None,
    force: bool,
    outcome: str,
    token: int | None,
    reason: str | None,
    claimed: bool,
) -> None:
    decision = lease.decide_claim(record, "p", plan_ledger, plan_holder, force)
    assert (decision.outcome, decision.takeover_reason) == (outcome, reason)
    result = decision.result()
    assert (result.outcome, result.claimed, result.fencing_token) == (outcome, claimed, token)
    assert result.takeover_reason == reason
    assert decision.grants == (outcome in ("claimed", "taken_over"))
    if outcome == "taken_over":
        assert result.previous_session == OTHER
        assert decision.fencing_token == plan_ledger.fencing_token + 1  # type: ignore[union-attr]
    else:
        assert result.previous_session is None
    if outcome == "held_by_other":
        assert result.holder is not None and result.holder.session_id == OTHER
    else:
        assert result.holder is None
    assert result.held_plan == ("q" if outcome == "holding_other" else None)


@pytest.mark.parametrize("status", ["active", "idle"])
@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("alive", [True, None])
def test_a_live_holder_with_a_fresh_heartbeat_is_never_displaced(
    status: str, force: bool, alive: bool | None
) -> None:
    fresh = holder(status, alive=alive, age=1.0)
    assert lease.takeover_reason(fresh, force) is None
    decision = lease.decide_claim(own(), "p", ledger(OTHER, 9), fresh, force)
    assert decision.outcome == "held_by_other"
    assert not decision.grants


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("state", [ProcessState.GONE, ProcessState.REUSED])
def test_a_remote_holder_is_never_proven_dead(force: bool, state: ProcessState) -> None:
    """Another host's (or boot's, or PID namespace's) holder: even a probe that
    says "gone" for its pid proves nothing; it is stale at worst, and only
    ``force`` displaces it (forced_stale, never proof_of_death)."""
    me = Observer(session_id=ME, host="h", boot_id="b1", pid_namespace="ns1", boottime=None)
    remotes = [
        SessionRecord(session_id=OTHER, plan_id="p", host="elsewhere", pid=20,
                      boot_id="b1", pid_namespace="ns1", last_heartbeat=T0),
        SessionRecord(session_id=OTHER, plan_id="p", host="h", pid=20,
                      boot_id="b0", pid_namespace="ns1", last_heartbeat=T0),
        SessionRecord(session_id=OTHER, plan_id="p", host="h", pid=20,
                      boot_id="b1", pid_namespace="ns2", last_heartbeat=T0),
        SessionRecord(session_id=OTHER, plan_id="p", host="h", pid=20, last_heartbeat=T0),
    ]  # fmt: skip
    for record in remotes:
        for age in (1.0, 10_000.0):
            now = T0 + timedelta(seconds=age)
            liveness = assess(record, now, me, lambda *_: state, Thresholds())
            remote = lease.Holder(record, view_of(record, liveness), on_disk=True)
            decision = lease.decide_claim(own(), "p", ledger(OTHER, 4), remote, force)
            assert liveness.process_alive is None
            assert decision.takeover_reason != "proof_of_death"
            expected = "taken_over" if force and liveness.status == "stale" else "held_by_other"
            assert decision.outcome == expected


def test_a_local_holder_whose_process_is_gone_is_taken_over_without_force() -> None:
    me = Observer(session_id=ME, host="h", boot_id="b1", pid_namespace="ns1", boottime=None)
    record = SessionRecord(
        session_id=OTHER, plan_id="p", host="h", pid=20, boot_id="b1", pid_namespace="ns1",
        last_heartbeat=T0,
    )  # fmt: skip
    liveness = assess(record, T0, me, lambda *_: ProcessState.GONE, Thresholds())
    dead = lease.Holder(record, view_of(record, liveness), on_disk=True)
    decision = lease.decide_claim(own(), "p", ledger(OTHER, 4), dead, force=False)
    assert (decision.outcome, decision.takeover_reason) == ("taken_over", "proof_of_death")


MESSAGES = [
    (lease.decide_claim(own("p", 3), "p", None, None, False),
     "You already hold plan p with fencing token 3; carry on."),
    (lease.decide_claim(own("q", 2), "p", None, None, False),
     "You hold plan q. A session holds one plan at a time: release q first, then claim p."),
    (lease.decide_claim(own(), "p", ledger(None, 6), None, False),
     "Plan p is yours, fencing token 7. Heartbeat while you work and release it when done."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("active", age=12.4), True),
     "Plan p is held by session other (active, last heartbeat 12 s ago, branch feat). "
     "A live holder is never displaced: pick another plan, or coordinate with that session."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("idle", age=None, branch=None), False),
     "Plan p is held by session other (idle, last heartbeat 0 s ago, branch unknown). "
     "A live holder is never displaced: pick another plan, or coordinate with that session."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("stale", age=400.2), False),
     "Plan p is held by session other, which is stale (last heartbeat 400 s ago) but not "
     "proven dead. If you are sure it is abandoned, call claim_plan again with force=true; "
     "otherwise pick another plan."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("stale", age=None), False),
     "Plan p is held by session other, which is stale (last heartbeat never) but not "
     "proven dead. If you are sure it is abandoned, call claim_plan again with force=true; "
     "otherwise pick another plan."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("dead", alive=False), False),
     "Took plan p over from session other (its process is proven dead); your fencing token "
     "is 5. Check the state it left (uncommitted work, branches) before going on."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("ended"), False),
     "Took plan p over from session other (it had ended without releasing); your fencing "
     "token is 5. Check the state it left (uncommitted work, branches) before going on."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("stale"), True),
     "Took plan p over from session other (it was stale and you forced the takeover); your "
     "fencing token is 5. Check the state it left (uncommitted work, branches) before going on."),
    (lease.decide_claim(own(), "p", ledger(OTHER, 4), holder("stale", on_disk=False), True),
     "Took plan p over from session other (its record is gone and you forced the takeover); "
     "your fencing token is 5. Check the state it left (uncommitted work, branches) before "
     "going on."),
]  # fmt: skip


@pytest.mark.parametrize(("decision", "message"), MESSAGES)
def test_claim_messages_word_for_word(decision: lease.ClaimDecision, message: str) -> None:
    assert decision.result().message == message


# (name, record, plan_id, fencing_token) -> (outcome, plan_id, released, message)
RELEASES = [
    ("nothing held, nothing named", own(), None, None,
     "not_held", None, "You hold no plan; nothing to release."),
    ("the plan held", own("p", 3), None, None,
     "released", "p", "Released plan p; another session may claim it now."),
    ("the plan held, by name and token", own("p", 3), "p", 3,
     "released", "p", "Released plan p; another session may claim it now."),
    ("another plan than the one held", own("p", 3), "q", None,
     "not_held", "q", "You do not hold plan q; nothing to release."),
    ("a plan, none held", own(), "q", None,
     "not_held", "q", "You do not hold plan q; nothing to release."),
    ("an old token", own("p", 3), "p", 2,
     "stale_token", "p", "Refused: fencing token 2 is stale (your token is 3). Nothing was "
     "changed; call heartbeat or session_info to see what you hold."),
    ("a token, plan no longer held", own(), "p", 2,
     "stale_token", "p", "Refused: fencing token 2 is stale (you no longer hold plan p). "
     "Nothing was changed; call heartbeat or session_info to see what you hold."),
    ("a token for another plan", own("p", 3), "q", 3,
     "stale_token", "q", "Refused: fencing token 3 is stale (you no longer hold plan q). "
     "Nothing was changed; call heartbeat or session_info to see what you hold."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "plan_id", "token", "outcome", "target", "message"),
    [case[1:] for case in RELEASES],
    ids=[case[0] for case in RELEASES],
)
def test_release_decisions(
    record: SessionRecord,
    plan_id: str | None,
    token: int | None,
    outcome: str,
    target: str | None,
    message: str,
) -> None:
    result = lease.decide_release(record, plan_id, token).result()
    assert (result.outcome, result.plan_id, result.released) == (
        outcome,
        target,
        outcome == "released",
    )
    assert result.message == message


LOSSES = [
    ("no claim", own(), ledger(OTHER, 5), None),
    ("still mine", own("p", 3), ledger(ME, 3), None),
    ("taken over on proof of death", own("p", 3),
     ledger(OTHER, 4, takeover_reason="proof_of_death"), (OTHER, "proof_of_death", T0)),
    ("claimed by another after a release", own("p", 3), ledger(OTHER, 4),
     (OTHER, "claimed by another session", T0)),
    ("re-claimed under my id by another process", own("p", 3), ledger(ME, 4),
     (ME, "claimed by another session", T0)),
    ("released on my behalf", own("p", 3),
     ledger(None, 3, released_at=T0, release_reason="session ended: sigterm"),
     (None, "session ended: sigterm", T0)),
    ("released, no reason", own("p", 3), ledger(None, 3), (None, "claim ledger missing", None)),
    ("ledger gone", own("p", 3), None, (None, "claim ledger missing", None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "plan_ledger", "expected"),
    [case[1:] for case in LOSSES],
    ids=[case[0] for case in LOSSES],
)
def test_loss_detection(
    record: SessionRecord,
    plan_ledger: ClaimRecord | None,
    expected: tuple[str | None, str, datetime | None] | None,
) -> None:
    loss = lease.detect_loss(ME, record, plan_ledger)
    if expected is None:
        assert loss is None
        return
    assert loss is not None
    assert (loss.taken_by, loss.reason, loss.at) == expected
    assert (loss.plan_id, loss.fencing_token) == ("p", 3)


def test_the_ledger_of_a_grant_and_of_a_release() -> None:
    dead = holder("dead", alive=False)
    granted = lease.granted_ledger("p", 5, own(), T0, (dead, "proof_of_death"))
    assert (granted.holder, granted.holder_pid, granted.fencing_token) == (ME, 10, 5)
    assert (granted.acquired_by, granted.takeover_reason, granted.previous_holder) == (
        "takeover",
        "proof_of_death",
        OTHER,
    )
    freed = lease.released_ledger(granted, T0, "done")
    assert (freed.holder, freed.holder_pid, freed.fencing_token) == (None, None, 5)
    assert lease.next_token(freed) == 6
    assert lease.next_token(None) == 1


def test_the_displaced_holder_learns_who_took_its_plan() -> None:
    dead = holder("dead", alive=False)
    new = lease.granted_ledger("p", 5, own(), T0, (dead, "proof_of_death"))
    displaced = lease.displaced_record(dead, new, "proof_of_death", ME)
    assert displaced is not None and displaced.plan_id is None
    assert displaced.claim_lost is not None
    assert (displaced.claim_lost.taken_by, displaced.claim_lost.fencing_token) == (ME, 4)
    assert lease.displaced_record(holder("dead", on_disk=False), new, "proof_of_death", ME) is None


def test_a_holder_without_a_record_is_judged_by_the_ledger() -> None:
    plan = ledger(OTHER, 4, holder_host="h", holder_pid=20, holder_boot_id="b1")
    rebuilt, on_disk = lease.holder_record(plan, None)
    assert not on_disk
    assert (rebuilt.session_id, rebuilt.pid, rebuilt.boot_id, rebuilt.fencing_token) == (
        OTHER,
        20,
        "b1",
        4,
    )
    same = SessionRecord(session_id=OTHER, host="h", pid=20, last_heartbeat=T0)
    assert lease.holder_record(plan, same) == (same, True)
    # A record naming another process (its rewrite after an adoption failed) never
    # decides which process holds the plan: the ledger's does, with the record's beat.
    stale_copy = SessionRecord(session_id=OTHER, host="h", pid=21, last_heartbeat=T0)
    judged, on_disk = lease.holder_record(plan, stale_copy)
    assert on_disk and (judged.pid, judged.boot_id, judged.last_heartbeat) == (20, "b1", T0)
