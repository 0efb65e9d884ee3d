"""Every claim_plan and release outcome, fencing tokens, adoption, losses."""

from __future__ import annotations

import json

import pytest

from mcp_server_heartbeat.domain.errors import InvalidInputError
from mcp_server_heartbeat.store.directory.store import DirectoryStore


def test_free_plan_is_claimed_with_token_1(make_service, heartbeat_dir):
    a = make_service("a", pid=101)
    result = a.claim("043")
    assert (result.outcome, result.claimed, result.fencing_token) == ("claimed", True, 1)
    on_disk = json.loads((heartbeat_dir / "a.json").read_text())
    assert (on_disk["plan_id"], on_disk["fencing_token"]) == ("043", 1)
    ledger = json.loads((heartbeat_dir / "claims" / "043.json").read_text())
    assert (ledger["holder"], ledger["fencing_token"]) == ("a", 1)


def test_reclaim_is_idempotent_with_same_token(make_service):
    a = make_service("a", pid=101)
    first = a.claim("043")
    again = a.claim("043")
    assert again.outcome == "already_yours"
    assert again.claimed is True
    assert again.fencing_token == first.fencing_token


def test_holding_another_plan_is_refused(make_service):
    a = make_service("a", pid=101)
    a.claim("043")
    result = a.claim("044")
    assert (result.outcome, result.claimed, result.held_plan) == ("holding_other", False, "043")
    assert "release 043 first" in result.message


def test_live_holder_is_never_displaced_even_with_force(make_service):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    for force in (False, True):
        result = b.claim("043", force=force)
        assert (result.outcome, result.claimed) == ("held_by_other", False)
        assert result.holder is not None
        assert result.holder.session_id == "a"
        assert result.holder.status == "active"
        assert result.fencing_token is None


def test_dead_holder_is_taken_over_automatically(make_service, probe):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    assert a.claim("043").fencing_token == 1
    probe.dead.add(101)  # kill -9
    result = b.claim("043")
    assert (result.outcome, result.claimed, result.previous_session) == ("taken_over", True, "a")
    assert result.takeover_reason == "proof_of_death"
    assert result.fencing_token == 2


def test_pid_reuse_counts_as_proof_of_death(make_service, probe):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    probe.reused.add(101)
    assert b.claim("043").outcome == "taken_over"


def test_stale_holder_needs_force(make_service, clock):
    a = make_service("a", pid=101)
    a.claim("043")
    clock.advance(301)
    b = make_service("b", pid=102)
    refused = b.claim("043")
    assert refused.outcome == "held_by_other"
    assert refused.holder is not None and refused.holder.status == "stale"
    assert "force=true" in refused.message
    forced = b.claim("043", force=True)
    assert (forced.outcome, forced.takeover_reason, forced.fencing_token) == (
        "taken_over",
        "forced_stale",
        2,
    )


def test_stale_holder_on_another_host_is_never_dead(make_service, clock, probe):
    a = make_service("a", pid=101, host="other-machine")
    a.claim("043")
    probe.dead.add(101)  # would be dead if it were on this host
    clock.advance(301)
    b = make_service("b", pid=102)
    result = b.claim("043")
    assert result.outcome == "held_by_other"
    assert result.holder is not None and result.holder.relationship == "stale_remote"


def test_displaced_holder_learns_of_the_loss_once(make_service, clock, heartbeat_dir):
    a = make_service("a", pid=101)
    a.claim("043")
    clock.advance(301)
    b = make_service("b", pid=102)
    b.claim("043", force=True)
    # The displaced record no longer claims the plan (kata readers see one holder).
    assert json.loads((heartbeat_dir / "a.json").read_text())["plan_id"] is None
    first = a.heartbeat()
    assert first.claim_lost is not None
    assert (first.claim_lost.plan_id, first.claim_lost.taken_by) == ("043", "b")
    assert first.claim_lost.reason == "forced_stale"
    assert first.claim_lost.fencing_token == 1
    assert first.session.plan_id is None
    assert a.heartbeat().claim_lost is None


def test_release_then_claim_gives_a_larger_token(make_service):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    assert a.claim("043").fencing_token == 1
    released = a.release("043", reason="done")
    assert (released.outcome, released.released) == ("released", True)
    assert b.claim("043").fencing_token == 2
    assert b.release().outcome == "released"
    assert a.claim("043").fencing_token == 3


def test_release_not_held_is_a_noop(make_service, heartbeat_dir):
    a = make_service("a", pid=101)
    before = sorted(p.name for p in heartbeat_dir.rglob("*"))
    assert a.release().outcome == "not_held"
    assert a.release("043").outcome == "not_held"
    assert sorted(p.name for p in heartbeat_dir.rglob("*")) == before


def test_release_with_stale_token_is_refused_and_changes_nothing(make_service, heartbeat_dir):
    a = make_service("a", pid=101)
    a.claim("043")
    a.release("043")
    token = a.claim("043").fencing_token
    assert token == 2
    ledger_before = (heartbeat_dir / "claims" / "043.json").read_bytes()
    refused = a.release("043", fencing_token=1)
    assert (refused.outcome, refused.released) == ("stale_token", False)
    assert (heartbeat_dir / "claims" / "043.json").read_bytes() == ledger_before
    assert a.release("043", fencing_token=2).outcome == "released"


def test_release_with_old_token_after_takeover_is_refused(make_service, probe, heartbeat_dir):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    probe.dead.add(101)
    b.claim("043")
    probe.dead.discard(101)
    ledger_before = (heartbeat_dir / "claims" / "043.json").read_bytes()
    assert a.release("043", fencing_token=1).outcome == "stale_token"
    assert (heartbeat_dir / "claims" / "043.json").read_bytes() == ledger_before


def test_tokens_survive_a_store_reopened_from_disk(make_service, heartbeat_dir, clock, probe):
    a = make_service("a", pid=101)
    for _ in range(3):
        a.claim("043")
        a.release()
    # A brand-new process: new store object over the same directory.
    fresh = make_service("z", pid=999)
    assert isinstance(fresh.store, DirectoryStore)
    assert fresh.claim("043").fencing_token == 4


def test_tokens_are_per_plan(make_service):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    a.release()
    a.claim("043")
    assert b.claim("044").fencing_token == 1


def test_ended_session_releases_and_is_marked(make_service, heartbeat_dir):
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    a.end("disconnect")
    record = json.loads((heartbeat_dir / "a.json").read_text())
    assert record["ended_at"] is not None
    assert record["end_reason"] == "disconnect"
    assert record["plan_id"] is None
    assert b.claim("043").outcome == "claimed"
    a.end("again")  # idempotent
    assert json.loads((heartbeat_dir / "a.json").read_text())["end_reason"] == "disconnect"


def test_restart_with_same_id_adopts_record_and_claim(make_service, clock, probe):
    a = make_service("a", pid=101)
    started = a.view_self().started_at
    a.heartbeat(role="executor")
    a.claim("043")
    probe.dead.add(101)  # the old server was killed
    clock.advance(60)
    again = make_service("a", pid=201)  # Claude Code /mcp reconnect
    view = again.view_self()
    assert view.started_at == started
    assert (view.role, view.plan_id, view.fencing_token, view.pid) == ("executor", "043", 1, 201)
    b = make_service("b", pid=102)
    assert b.claim("043").outcome == "held_by_other"  # judged by the new pid, alive


def test_bad_ids_are_refused_with_the_rule(make_service, heartbeat_dir, tmp_path):
    a = make_service("a", pid=101)
    for bad in ["../x", "a/b", ".hidden", "", "x" * 129, "é", "a\x00b", "-lead"]:
        with pytest.raises(InvalidInputError, match=r"plan_id .* is not accepted: use 1 to 128"):
            a.claim(bad)
    assert not (tmp_path / "x.json").exists()
    assert sorted(p.name for p in (heartbeat_dir / "claims").iterdir()) == []


def test_heartbeat_input_limits(make_service):
    a = make_service("a", pid=101)
    with pytest.raises(InvalidInputError, match="activity is 201 characters"):
        a.heartbeat(activity="x" * 201)
    with pytest.raises(InvalidInputError, match="control characters"):
        a.heartbeat(activity="line\nbreak")
    with pytest.raises(InvalidInputError, match="role 'boss' is not accepted"):
        a.heartbeat(role="boss")
    with pytest.raises(InvalidInputError, match="only 'kind' and 'topics'"):
        a.heartbeat(tags={"kind": "feature", "colour": "red"})
    with pytest.raises(InvalidInputError, match="at most 2 topics"):
        a.heartbeat(tags={"topics": ["a", "b", "c"]})
    ok = a.heartbeat(activity="pr-prepare:step3", role="reviewer", tags={"topics": ["auth"]})
    assert (ok.session.last_activity, ok.session.role) == ("pr-prepare:step3", "reviewer")


def test_list_filters_and_hides_ended(make_service, probe):
    a = make_service("a", pid=101)
    make_service("b", pid=102)
    c = make_service("c", pid=103)
    a.claim("043")
    c.touch()  # an agent tool call: not a health check, so its end keeps the record
    c.end("disconnect")
    probe.dead.add(102)
    views = {v.session_id: v for v in a.list_sessions().sessions}
    assert set(views) == {"a", "b"}
    assert (views["a"].relationship, views["b"].status) == ("self", "dead")
    assert [v.session_id for v in a.list_sessions(include_ended=True).sessions] == ["a", "b", "c"]
    assert [v.session_id for v in a.list_sessions(status="ended").sessions] == ["c"]
    assert [v.session_id for v in a.list_sessions(plan_id="043").sessions] == ["a"]
    with pytest.raises(InvalidInputError, match="status 'gone' is not accepted"):
        a.list_sessions(status="gone")


def test_listing_never_modifies_the_directory(make_service, heartbeat_dir, probe, clock):
    a = make_service("a", pid=101)
    make_service("b", pid=102).claim("044")
    probe.dead.add(102)
    clock.advance(1000)

    def snapshot():
        return {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
                for p in heartbeat_dir.rglob("*")}  # fmt: skip

    before = snapshot()
    a.list_sessions(include_ended=True)
    a.touch()
    a.view_self()
    assert snapshot() == before
