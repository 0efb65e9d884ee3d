"""The event log (issue 4): what the service logs, under the lock it changes
state with; the file format, rotation and pruning; and agreement between the
log and the state after real processes raced."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import T0, FakeClock, FakeProbe, ServiceFactory
from mcp_server_heartbeat.domain.errors import StoreError
from mcp_server_heartbeat.store.directory.events import EVENTS_NAME, Event, EventLog
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from race_harness import RaceConfig, run_race


def kinds(directory: Path, plan_id: str | None = None) -> list[str]:
    events = DirectoryStore(directory).read_events()
    return [e.event for e in events if plan_id is None or e.plan_id == plan_id]


def test_claim_release_and_end_are_logged_with_tokens(
    make_service: ServiceFactory, heartbeat_dir: Path, clock: FakeClock
) -> None:
    a = make_service("a", pid=101)
    assert a.claim("043").fencing_token == 1
    clock.advance(5)
    a.release("043", reason="done")
    a.claim("043")
    a.end("disconnect")

    events = DirectoryStore(heartbeat_dir).read_events()
    assert [(e.event, e.plan_id, e.fencing_token, e.reason) for e in events] == [
        ("session_started", None, None, None),
        ("claim_granted", "043", 1, None),
        ("claim_released", "043", 1, "done"),
        ("claim_granted", "043", 2, None),
        ("claim_released", "043", 2, "session ended: disconnect"),
        ("session_ended", None, None, "disconnect"),
    ]
    assert {e.session_id for e in events} == {"a"}
    assert events[2].at == T0 + timedelta(seconds=5)
    assert events[0].host and events[0].pid == 101


def test_refusals_and_idempotent_calls_log_nothing(
    make_service: ServiceFactory, heartbeat_dir: Path
) -> None:
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    a.claim("043")
    before = kinds(heartbeat_dir)
    assert a.claim("043").outcome == "already_yours"
    assert b.claim("043").outcome == "held_by_other"
    assert b.release("043").outcome == "not_held"
    a.heartbeat(activity="step")
    assert kinds(heartbeat_dir) == before


def test_takeovers_say_why_and_the_loser_logs_its_loss(
    make_service: ServiceFactory, heartbeat_dir: Path, clock: FakeClock, probe: FakeProbe
) -> None:
    a = make_service("a", pid=101)
    b = make_service("b", pid=102)
    c = make_service("c", pid=103)
    a.claim("043")
    b.claim("044")
    probe.dead.add(101)  # a is killed: proof of death
    assert c.claim("043").outcome == "taken_over"
    clock.advance(400)  # b goes stale, its process alive
    c.release("043")
    assert c.claim("044", force=True).takeover_reason == "forced_stale"
    b.heartbeat()  # b learns of the loss

    events = DirectoryStore(heartbeat_dir).read_events()
    takeovers = [e for e in events if e.event == "claim_taken_over"]
    assert [(e.plan_id, e.session_id, e.previous_holder, e.reason, e.force) for e in takeovers] == [
        ("043", "c", "a", "proof_of_death", False),
        ("044", "c", "b", "forced_stale", True),
    ]
    lost = [e for e in events if e.event == "claim_lost"]
    assert [(e.session_id, e.plan_id, e.fencing_token, e.taken_by) for e in lost] == [
        ("b", "044", 1, "c")
    ]


def test_adoption_is_logged(
    make_service: ServiceFactory, heartbeat_dir: Path, probe: FakeProbe
) -> None:
    a = make_service("a", pid=101)
    a.claim("043")
    probe.dead.add(101)  # the first server died (a live one is never adopted)
    make_service("a", pid=201)  # the server restarts with the same session id
    events = DirectoryStore(heartbeat_dir).read_events()
    assert events[-1].event == "session_adopted"
    assert (events[-1].plan_id, events[-1].fencing_token, events[-1].pid) == ("043", 1, 201)


def test_log_is_jsonl_hidden_from_session_readers(
    make_service: ServiceFactory, heartbeat_dir: Path
) -> None:
    make_service("a", pid=101).claim("043")
    path = heartbeat_dir / EVENTS_NAME
    assert not path.name.endswith(".json")
    lines = path.read_text().splitlines()
    assert all(json.loads(line)["event"] for line in lines)
    assert os.stat(path).st_mode & 0o777 == 0o600
    records, unreadable = DirectoryStore(heartbeat_dir).list_sessions()
    assert [r.session_id for r in records] == ["a"] and unreadable == []


def test_a_torn_last_line_is_skipped_and_appending_goes_on(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.append(Event(at=T0, event="session_started", session_id="a"))
    with open(log.path, "ab") as stream:
        stream.write(b'{"at": "2026-11-20T12:00:00Z", "event": "claim_gr')  # crash mid-write
    events, skipped = log.read()
    assert [e.session_id for e in events] == ["a"] and skipped == 1


def test_rotation_keeps_generations_and_reads_oldest_first(tmp_path: Path) -> None:
    log = EventLog(tmp_path, rotate_at=400, keep=2)
    for i in range(30):
        log.append(
            Event(
                at=T0 + timedelta(seconds=i),
                event="claim_granted",
                session_id="s",
                plan_id="p",
                fencing_token=i + 1,
            )
        )
    assert (tmp_path / "events.1.jsonl").exists() and (tmp_path / "events.2.jsonl").exists()
    assert not (tmp_path / "events.3.jsonl").exists()
    assert os.path.getsize(log.path) < 400 + 200
    tokens = [e.fencing_token for e in log.read()[0]]
    assert tokens == sorted(tokens) and tokens[-1] == 30 and len(tokens) < 30  # oldest dropped


def test_prune_drops_only_old_events(tmp_path: Path) -> None:
    log = EventLog(tmp_path, rotate_at=300)
    for i in range(10):
        log.append(Event(at=T0 + timedelta(days=i), event="session_started", session_id=f"s{i}"))
    assert log.prune(T0 + timedelta(days=6), dry_run=True) == 6
    assert len(log.read()[0]) == 10
    assert log.prune(T0 + timedelta(days=6)) == 6
    assert [e.session_id for e in log.read()[0]] == ["s6", "s7", "s8", "s9"]
    assert not list(tmp_path.glob("events.*.jsonl")) or not (tmp_path / "events.1.jsonl").exists()


def test_a_symlinked_log_is_refused_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    directory = tmp_path / "sessions"
    directory.mkdir()
    (directory / EVENTS_NAME).symlink_to(outside)
    with pytest.raises(StoreError, match="symbolic link"):
        EventLog(directory).append(Event(at=T0, event="session_started", session_id="a"))
    assert outside.read_text() == ""
    assert EventLog(directory).read() == ([], 0)


def test_a_failing_log_never_fails_the_claim(
    make_service: ServiceFactory, heartbeat_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = make_service("a", pid=101)
    (heartbeat_dir / EVENTS_NAME).unlink()
    (heartbeat_dir / EVENTS_NAME).mkdir()  # something in the way
    assert a.claim("043").outcome == "claimed"
    assert DirectoryStore(heartbeat_dir).read_claim("043").holder == "a"  # type: ignore[union-attr]
    assert "not logged" in caplog.text


@pytest.mark.slow
def test_log_matches_state_after_a_multi_process_race(tmp_path: Path) -> None:
    """6 real processes, 2 plans, free-running claim/heartbeat/release: the log has
    exactly the grants the workers saw, tokens 1..n per plan in log order, every
    grant followed by its release, and its last token equals the ledger's."""
    directory = tmp_path / "sessions"
    config = RaceConfig(processes=6, rounds=60, plans=2, lockstep=False)
    report = run_race(directory, tmp_path / "work", config, timeout_s=120)
    assert report.violations == []

    store = DirectoryStore(directory)
    events = store.read_events()
    per_plan: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.plan_id is not None:
            per_plan[event.plan_id].append(event)
    grants = sum(1 for e in events if e.event == "claim_granted")
    assert grants == report.grants
    assert sum(1 for e in events if e.event == "claim_released") == report.releases
    assert sum(1 for e in events if e.event == "session_started") == 6
    assert sum(1 for e in events if e.event == "session_ended") == 6
    for plan, plan_events in per_plan.items():
        granted = [e.fencing_token for e in plan_events if e.event == "claim_granted"]
        assert granted == list(range(1, len(granted) + 1)), plan
        # holder transitions alternate: granted by s, released by the same s with its token
        for grant, release in zip(plan_events[::2], plan_events[1::2], strict=True):
            assert grant.event == "claim_granted" and release.event == "claim_released"
            assert (grant.session_id, grant.fencing_token) == (
                release.session_id,
                release.fencing_token,
            )
        ledger = store.read_claim(plan)
        assert ledger is not None and ledger.holder is None
        assert ledger.fencing_token == granted[-1] == report.final_tokens[plan]
